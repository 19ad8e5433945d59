-- A refusal decided on the data (insufficient funds, an unknown receiver, a settled hold, ...)
-- is stored under the request's idempotency key like a success, so a retry with the key gets
-- the same answer (SPEC §2) instead of being judged afresh. `refusal` holds its reason and
-- message (`status` its code; `transaction_id` is empty). An app server of the previous
-- version, still running during a rolling upgrade, does not read the column: it answers the
-- retry of a refused keyed request wrongly (hold, refund, webhook: 500; the others: the code
-- without reason), applying nothing. README: restart them all together.

ALTER TABLE idempotency_keys
    ADD COLUMN IF NOT EXISTS refusal VARCHAR(512) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
