-- Every key holds its outcome in result columns (0003): the serialized response goes.

ALTER TABLE idempotency_keys
    DROP COLUMN IF EXISTS response,
    MODIFY transaction_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    MODIFY balance BIGINT NOT NULL,
    MODIFY status SMALLINT UNSIGNED NOT NULL;
