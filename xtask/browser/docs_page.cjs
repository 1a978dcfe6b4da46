// `cargo xtask browser` runs this with Node against a running `pos-gateway demo`: Chromium
// (headless, through playwright-core) opens /docs, and the check fails unless
//   - /docs lands on Swagger UI at /docs/, every request of the page going to the gateway itself
//     (no CDN, no online validator) and no script error;
//   - every operation of /openapi.json is listed on the page (method and path);
//   - "Authorize" with the bearer token, then "Try it out" and "Execute" on the list-customers
//     operation, gets 200 from the gateway, with the customer seeded before.
// A full-page screenshot is written either way, and one of the executed operation.
//
// Environment: GATEWAY (http://host:port), TOKEN, CATALOG, CHROMIUM (the browser binary),
// SCREENSHOT (a .png path; the operation's goes beside it, `-list-customers.png`). playwright-core is found through NODE_PATH (xtask installs it).
'use strict';

const { chromium } = require('playwright-core');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const GATEWAY = env('GATEWAY');
const TOKEN = env('TOKEN');
const CATALOG = env('CATALOG');
const CHROMIUM = env('CHROMIUM');
const SCREENSHOT = env('SCREENSHOT');
const LIST_PATH = '/api/v1/{catalog_id}/customers';
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function api(method, path, body) {
  const answer = await fetch(GATEWAY + path, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: answer.status, body: await answer.text() };
}

async function main() {
  // What the page must list, from the document the gateway serves.
  const document = await (await fetch(`${GATEWAY}/openapi.json`)).json();
  const expected = [];
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      if (item[method]) expected.push(`${method.toUpperCase()} ${path}`);
    }
  }
  check(expected.length > 0, '/openapi.json has no operation');
  check(
    expected.includes(`GET ${LIST_PATH}`),
    `/openapi.json does not document GET ${LIST_PATH}`
  );

  // A customer, so the listing Swagger UI fetches is not empty.
  const seeded = await api('POST', `/api/v1/${CATALOG}/customers`, {
    customer: { first_name: 'Ada', last_name: 'Lovelace', email: 'ada.lovelace@example.com' },
  });
  // 409: it is there from an earlier run over the same database.
  check(
    seeded.status === 201 || seeded.status === 409,
    `seeding a customer gave ${seeded.status}: ${seeded.body}`
  );

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Chromium's sandbox needs user namespaces, which containers and root often lack.
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const problems = [];
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  try {
    const origin = new URL(GATEWAY).origin;
    page.on('request', (request) => {
      const url = request.url();
      if (!url.startsWith('data:') && new URL(url).origin !== origin) {
        problems.push(`the page asked another host: ${url}`);
      }
    });
    page.on('pageerror', (error) => problems.push(`script error on the page: ${error.message}`));
    page.on('response', (response) => {
      if (response.status() >= 500) {
        problems.push(`${response.url()} answered ${response.status()}`);
      }
    });

    const landed = await page.goto(`${GATEWAY}/docs`, { waitUntil: 'load' });
    check(landed && landed.ok(), `GET /docs gave ${landed && landed.status()}`);
    check(page.url() === `${origin}/docs/`, `/docs led to ${page.url()}, not /docs/`);
    await page.locator('.opblock').first().waitFor({ timeout: 30000 });

    // Every operation of the document, by method and path.
    const listed = await page.$$eval('.opblock', (blocks) =>
      blocks.map((block) => {
        const method = block.querySelector('.opblock-summary-method');
        const path = block.querySelector('.opblock-summary-path');
        return `${method ? method.textContent.trim() : '?'} ${path ? path.getAttribute('data-path') : '?'}`;
      })
    );
    const missing = expected.filter((operation) => !listed.includes(operation));
    check(missing.length === 0, `not on the page: ${missing.join(', ')} (listed: ${listed.join(', ')})`);
    check(
      listed.length === expected.length,
      `the page lists ${listed.length} operations, the document ${expected.length}: ${listed.join(', ')}`
    );

    // Authorize with the bearer token.
    await page.locator('.auth-wrapper .authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    await dialog.locator('input').first().fill(TOKEN);
    await dialog.locator('button.authorize').click();
    await dialog.locator('button.btn-done').click();

    // Try it out: GET /api/v1/{catalog_id}/customers for the catalog.
    const block = page
      .locator('.opblock.opblock-get')
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${LIST_PATH}"]`) });
    await block.locator('.opblock-summary').click();
    await block.locator('.try-out__btn').click();
    await block.locator('tr[data-param-name="catalog_id"] input').fill(CATALOG);
    const [answer] = await Promise.all([
      page.waitForResponse(
        (response) => new URL(response.url()).pathname === `/api/v1/${CATALOG}/customers`,
        { timeout: 30000 }
      ),
      block.locator('button.execute').click(),
    ]);
    const sent = answer.request().headers()['authorization'];
    check(sent === `Bearer ${TOKEN}`, `the request carried Authorization: ${sent}`);
    check(answer.status() === 200, `Execute got ${answer.status()}: ${await answer.text()}`);
    const shown = block.locator('.live-responses-table tr.response .response-col_status').first();
    await shown.waitFor();
    const status = (await shown.textContent()).trim();
    check(status === '200', `the page shows status ${status}`);
    const body = await block.locator('.live-responses-table tr.response .response-col_description').first().textContent();
    check(body.includes('Lovelace'), `the page does not show the seeded customer: ${body}`);
    await block.screenshot({ path: SCREENSHOT.replace(/\.png$/, '') + '-list-customers.png' });

    check(problems.length === 0, problems.join('\n'));
    console.log(
      JSON.stringify({ operations: expected.length, listed: listed.length, execute: answer.status() })
    );
  } finally {
    await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
    await browser.close();
  }
}

main().catch((error) => {
  console.error(error && error.message ? error.message : error);
  process.exit(1);
});
