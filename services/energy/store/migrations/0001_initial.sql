-- Energy management schema (the seed's tables, with ids as bigint and times as timestamptz).

CREATE TABLE users (
    id            BIGSERIAL PRIMARY KEY,
    username      VARCHAR(50)  NOT NULL UNIQUE,
    email         VARCHAR(100) NOT NULL,
    -- argon2id PHC string; the password itself is never stored.
    password_hash VARCHAR(255) NOT NULL,
    role          VARCHAR(20)  NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    TIMESTAMPTZ  NOT NULL DEFAULT now()
);
-- Emails compare case-insensitively (the seed's idx_users_email, made unique).
CREATE UNIQUE INDEX idx_users_email ON users (lower(email));

CREATE TABLE buildings (
    id            BIGSERIAL PRIMARY KEY,
    name          VARCHAR(100)  NOT NULL,
    address       TEXT          NOT NULL,
    total_area    DECIMAL(10,2) CHECK (total_area > 0),
    floors        INTEGER       CHECK (floors BETWEEN 1 AND 500),
    building_type VARCHAR(50)   NOT NULL DEFAULT '',
    created_at    TIMESTAMPTZ   NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ   NOT NULL DEFAULT now()
);
CREATE INDEX idx_buildings_type ON buildings (building_type, id);

CREATE TABLE tenants (
    id                BIGSERIAL PRIMARY KEY,
    -- RESTRICT: a building with tenants is only deleted on purpose (DeleteBuilding force).
    building_id       BIGINT       NOT NULL REFERENCES buildings (id) ON DELETE RESTRICT,
    name              VARCHAR(100) NOT NULL,
    contact_info      VARCHAR(100) NOT NULL DEFAULT '',
    move_in_date      DATE,
    contract_end_date DATE,
    created_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ  NOT NULL DEFAULT now(),
    CONSTRAINT tenants_contract_after_move_in
        CHECK (move_in_date IS NULL OR contract_end_date IS NULL OR contract_end_date > move_in_date)
);
CREATE INDEX idx_tenants_building ON tenants (building_id, id);

-- The seed's relational sensor table, kept for imports of legacy data; live readings go to InfluxDB.
CREATE TABLE sensor_data (
    id          BIGSERIAL PRIMARY KEY,
    building_id BIGINT        REFERENCES buildings (id) ON DELETE CASCADE,
    sensor_type VARCHAR(50)   NOT NULL,
    value       DECIMAL(10,2) NOT NULL,
    unit        VARCHAR(20),
    recorded_at TIMESTAMPTZ   NOT NULL DEFAULT now()
);
CREATE INDEX idx_sensor_data_building_time ON sensor_data (building_id, recorded_at);

-- Reported daily consumption ("energy usage by day"); months are sums of days.
CREATE TABLE energy_usage_daily (
    building_id BIGINT           NOT NULL REFERENCES buildings (id) ON DELETE CASCADE,
    day         DATE             NOT NULL,
    kwh         DOUBLE PRECISION NOT NULL CHECK (kwh >= 0),
    recorded_at TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (building_id, day)
);

-- Cumulative meter register readings; daily usage is interpolated at UTC midnights.
CREATE TABLE meter_readings (
    building_id BIGINT           NOT NULL REFERENCES buildings (id) ON DELETE CASCADE,
    read_time   TIMESTAMPTZ      NOT NULL,
    meter_kwh   DOUBLE PRECISION NOT NULL CHECK (meter_kwh >= 0),
    recorded_at TIMESTAMPTZ      NOT NULL DEFAULT now(),
    PRIMARY KEY (building_id, read_time)
);

CREATE TABLE alert_rules (
    id              BIGSERIAL PRIMARY KEY,
    name            VARCHAR(100) NOT NULL,
    building_id     BIGINT       NOT NULL REFERENCES buildings (id) ON DELETE CASCADE,
    floor           VARCHAR(16)  NOT NULL DEFAULT '',
    room            VARCHAR(64)  NOT NULL DEFAULT '',
    severity        SMALLINT     NOT NULL,
    kind            VARCHAR(20)  NOT NULL CHECK (kind IN ('threshold', 'forecast_drift')),
    sensor_type     VARCHAR(64)  NOT NULL DEFAULT '',
    comparison      SMALLINT     NOT NULL DEFAULT 0,
    threshold       DOUBLE PRECISION NOT NULL DEFAULT 0,
    clear_threshold DOUBLE PRECISION NOT NULL DEFAULT 0,
    margin_percent  DOUBLE PRECISION NOT NULL DEFAULT 0,
    min_duration_ms BIGINT       NOT NULL DEFAULT 0,
    enabled         BOOLEAN      NOT NULL DEFAULT true,
    created_at      TIMESTAMPTZ  NOT NULL DEFAULT now()
);
CREATE INDEX idx_alert_rules_building ON alert_rules (building_id, id);

-- Alerts outlive their rules (history), so rule_id and building_id carry no foreign key.
CREATE TABLE alerts (
    id               BIGSERIAL PRIMARY KEY,
    rule_id          BIGINT           NOT NULL,
    building_id      BIGINT           NOT NULL,
    floor            VARCHAR(16)      NOT NULL DEFAULT '',
    room             VARCHAR(64)      NOT NULL DEFAULT '',
    sensor_type      VARCHAR(64)      NOT NULL DEFAULT '',
    severity         SMALLINT         NOT NULL,
    state            SMALLINT         NOT NULL CHECK (state IN (1, 2, 3)),
    message          VARCHAR(1024)    NOT NULL,
    trigger_value    DOUBLE PRECISION NOT NULL,
    threshold        DOUBLE PRECISION NOT NULL,
    fired_at         TIMESTAMPTZ      NOT NULL,
    acknowledged_at  TIMESTAMPTZ,
    acknowledged_by  VARCHAR(50)      NOT NULL DEFAULT '',
    acknowledge_note VARCHAR(1024)    NOT NULL DEFAULT '',
    cleared_at       TIMESTAMPTZ,
    -- Outbox flags: a notification that could not be published is retried by the evaluator.
    fire_published   BOOLEAN          NOT NULL DEFAULT false,
    clear_published  BOOLEAN          NOT NULL DEFAULT false
);
-- At most one open alert per rule and series: the evaluator's state.
CREATE UNIQUE INDEX idx_alerts_open ON alerts (rule_id, floor, room) WHERE state IN (1, 2);
CREATE INDEX idx_alerts_fired ON alerts (fired_at DESC, id DESC);
CREATE INDEX idx_alerts_building_fired ON alerts (building_id, fired_at DESC, id DESC);
CREATE INDEX idx_alerts_unpublished ON alerts (id) WHERE NOT fire_published OR (state = 3 AND NOT clear_published);
