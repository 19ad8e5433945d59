-- An idempotency key stores the outcome of its request as result columns (the transaction
-- it made, the caller's resulting balance, the protocol status of the answer) instead of a
-- serialized protobuf response, so the database no longer depends on the wire format.
-- The Python step of this migration (migrations/steps.py) fills them from the stored
-- responses; 0004 then drops the response column. IF NOT EXISTS: a run interrupted before
-- the step committed is taken up again.

ALTER TABLE idempotency_keys
    ADD COLUMN IF NOT EXISTS transaction_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NULL,
    ADD COLUMN IF NOT EXISTS balance BIGINT NULL,
    ADD COLUMN IF NOT EXISTS status SMALLINT UNSIGNED NULL,
    MODIFY response VARBINARY(4096) NULL;
