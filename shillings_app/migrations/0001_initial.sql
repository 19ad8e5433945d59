-- Users, credentials, money movements, idempotency keys and revoked tokens.
-- Money is BIGINT cents; timestamps are UTC DATETIME(6).

CREATE TABLE users (
    user_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    first_name VARCHAR(64) NOT NULL,
    middle_name VARCHAR(64) NULL,
    last_name VARCHAR(64) NOT NULL,
    email VARCHAR(254) NOT NULL,
    phone VARCHAR(32) NOT NULL,
    balance BIGINT NOT NULL DEFAULT 0,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id),
    UNIQUE KEY users_email (email),
    CONSTRAINT users_balance_range CHECK (balance >= 0 AND balance <= 1000000000000000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE credentials (
    credential_id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id BIGINT UNSIGNED NOT NULL,
    email VARCHAR(254) NOT NULL,
    password VARCHAR(128) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    last_login DATETIME(6) NULL,
    PRIMARY KEY (credential_id),
    UNIQUE KEY credentials_user (user_id),
    UNIQUE KEY credentials_email (email),
    CONSTRAINT credentials_user_fk FOREIGN KEY (user_id) REFERENCES users (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE transactions (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    transaction_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    kind ENUM('payment', 'topup') NOT NULL,
    sender_id BIGINT UNSIGNED NULL,
    sender_email VARCHAR(254) NULL,
    receiver_id BIGINT UNSIGNED NOT NULL,
    receiver_email VARCHAR(254) NOT NULL,
    amount BIGINT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY transactions_public_id (transaction_id),
    KEY transactions_sender (sender_id, id),
    KEY transactions_receiver (receiver_id, id),
    CONSTRAINT transactions_sender_fk FOREIGN KEY (sender_id) REFERENCES users (user_id),
    CONSTRAINT transactions_receiver_fk FOREIGN KEY (receiver_id) REFERENCES users (user_id),
    CONSTRAINT transactions_amount_range CHECK (amount > 0 AND amount <= 100000000),
    CONSTRAINT transactions_kind_parties CHECK (
        (kind = 'topup' AND sender_id IS NULL AND sender_email IS NULL)
        OR (kind = 'payment' AND sender_id IS NOT NULL AND sender_id <> receiver_id)
    )
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE idempotency_keys (
    user_id BIGINT UNSIGNED NOT NULL,
    idem_key VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    command VARCHAR(8) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    request_hash BINARY(32) NOT NULL,
    response VARBINARY(4096) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, idem_key),
    KEY idempotency_keys_created (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE revoked_tokens (
    jti VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    revoked_at DATETIME(6) NOT NULL,
    PRIMARY KEY (jti),
    KEY revoked_tokens_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
