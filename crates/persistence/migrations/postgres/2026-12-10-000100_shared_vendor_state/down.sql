DROP TABLE vendor_tokens;
DROP TABLE vendor_budgets;
