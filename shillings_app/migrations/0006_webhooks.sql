-- Webhook endpoints, their deliveries and the attempts of each (SPEC §7).
-- A webhook's signing secret is never stored in the clear: `secret_sealed` is the secret
-- encrypted with a key the app tier reads from its environment (README: "Webhook
-- secrets"), so a dump of this database alone cannot forge signatures.
-- A delivery is one event for one endpoint: workers claim due ones with
-- SELECT … FOR UPDATE SKIP LOCKED and push `next_attempt_at` past their send (a lease), so
-- a worker killed mid-send leaves it to be claimed again (at least once).

CREATE TABLE IF NOT EXISTS webhooks (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    webhook_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id BIGINT UNSIGNED NOT NULL,
    url VARCHAR(2048) NOT NULL,
    event_types VARCHAR(512) CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT '',
    state ENUM('enabled', 'disabled', 'deleted') NOT NULL DEFAULT 'enabled',
    secret_sealed VARBINARY(255) NOT NULL,
    failing_since DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY webhooks_public_id (webhook_id),
    KEY webhooks_user (user_id, state, id),
    CONSTRAINT webhooks_user_fk FOREIGN KEY (user_id) REFERENCES users (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS deliveries (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    webhook_id BIGINT UNSIGNED NOT NULL,
    event_id BIGINT UNSIGNED NOT NULL,
    state ENUM('pending', 'succeeded', 'failed') NOT NULL DEFAULT 'pending',
    attempts INT UNSIGNED NOT NULL DEFAULT 0,
    next_attempt_at DATETIME(6) NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY deliveries_once (webhook_id, event_id),
    KEY deliveries_due (state, next_attempt_at),
    CONSTRAINT deliveries_webhook_fk FOREIGN KEY (webhook_id) REFERENCES webhooks (id),
    CONSTRAINT deliveries_event_fk FOREIGN KEY (event_id) REFERENCES events (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS delivery_attempts (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    delivery_id BIGINT UNSIGNED NOT NULL,
    webhook_id BIGINT UNSIGNED NOT NULL,
    attempt INT UNSIGNED NOT NULL,
    status_code SMALLINT UNSIGNED NOT NULL DEFAULT 0,
    error VARCHAR(255) NOT NULL DEFAULT '',
    duration_ms INT UNSIGNED NOT NULL,
    attempted_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    KEY delivery_attempts_webhook (webhook_id, id),
    CONSTRAINT delivery_attempts_delivery_fk FOREIGN KEY (delivery_id) REFERENCES deliveries (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
