-- A captured hold names its capture's ledger row (capture_transaction_id), so the hold as the
-- API shows it (capture answer, GET /v1/holds, the hold.captured event and its webhook
-- delivery) says which transaction to refund or reconcile. Holds captured before are filled
-- from the ledger (a hold has at most one capture).
-- The check is one-way (only a captured hold names one): an app server of the previous
-- version, still running during a rolling upgrade, captures without filling it.

ALTER TABLE holds
    ADD COLUMN IF NOT EXISTS capture_transaction_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL;

UPDATE holds AS h JOIN transactions AS t ON t.hold_id = h.hold_id AND t.kind = 'capture'
    SET h.capture_transaction_id = t.transaction_id
    WHERE h.capture_transaction_id IS NULL;

ALTER TABLE holds
    ADD CONSTRAINT IF NOT EXISTS holds_capture_named CHECK (
        capture_transaction_id IS NULL OR state = 'captured'
    );
