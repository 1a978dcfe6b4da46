DROP TABLE pending_creates;
