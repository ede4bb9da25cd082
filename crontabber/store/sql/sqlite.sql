-- Every statement crontabber sends to SQLite while it runs jobs, by name.
-- SQLite has no row locks: a claim, an outcome or a reset is a few of these
-- statements in one BEGIN IMMEDIATE transaction, which serialises them across
-- processes. Times are the clock of the one host that has the file, as text in
-- the form SQLAlchemy stores datetimes in ('YYYY-MM-DD HH:MM:SS.ffffff', UTC),
-- so that they compare as text. Parameters are sqlite3's :name. The lease rule
-- is the {abandoned} fragment, the one place where a claim is found abandoned.
--
-- The columns of a job's row, in this order, are STATE_COLUMNS in crontabber/store/schema.py.

-- name: abandoned
-- Why the claim on the row c is abandoned ('pid', 'lease', 'age'), or NULL while it is live.
CASE
    WHEN c.ongoing IS NULL THEN NULL
    WHEN c.ongoing_token = :dead_token THEN 'pid'
    WHEN c.lease_expires IS NOT NULL
        AND c.lease_expires < strftime('%Y-%m-%d %H:%M:%f000', 'now') THEN 'lease'
    WHEN c.ongoing < strftime(
        '%Y-%m-%d %H:%M:%f000', 'now', printf('-%f seconds', :max_age_seconds)
    ) THEN 'age'
END

-- name: paused
-- Whether the job of the row c has a pause in force (until NULL, or not yet come).
EXISTS (
    SELECT 1 FROM crontabber_pause AS p
    WHERE p.app_name = c.app_name
        AND (p.until IS NULL OR p.until > strftime('%Y-%m-%d %H:%M:%f000', 'now'))
)

-- name: pauses
-- Every pause in force, as JSON, or NULL.
(SELECT json_group_array(json_object(
        'app_name', p.app_name, 'since', p.since, 'until', p.until, 'reason', p.reason,
        'actor', p.actor))
    FROM crontabber_pause AS p
    WHERE p.until IS NULL OR p.until > strftime('%Y-%m-%d %H:%M:%f000', 'now'))

-- name: read_states
SELECT
    (SELECT group_concat(version_num, ',') FROM crontabber_alembic_version) AS revision,
    strftime('%Y-%m-%d %H:%M:%f000', 'now') AS db_now,
    c.app_name, c.next_run, c.first_run, c.last_run, c.last_success, c.error_count,
    c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid, c.ongoing_token,
    c.heartbeat, c.lease_expires, c.fence, c.run_now, c.run_now_displaced, c.cancel_requested,
    {abandoned} AS abandoned,
    (SELECT min(log_time) FROM crontabber_log) AS oldest_log,
    {pauses} AS paused
FROM (SELECT 1) AS one
LEFT JOIN crontabber AS c ON 1

-- name: schema_revision
SELECT group_concat(version_num, ',') FROM crontabber_alembic_version

-- name: insert_state
INSERT INTO crontabber (app_name, depends_on, error_count)
VALUES (:app_name, :depends_on, 0)
ON CONFLICT (app_name) DO NOTHING

-- name: lock
SELECT
    c.app_name, c.next_run, c.first_run, c.last_run, c.last_success, c.error_count,
    c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid, c.ongoing_token,
    c.heartbeat, c.lease_expires, c.fence, c.run_now, c.run_now_displaced, c.cancel_requested,
    strftime('%Y-%m-%d %H:%M:%f000', 'now') AS db_now, {abandoned} AS abandoned,
    {paused} AS paused
FROM crontabber AS c
WHERE c.app_name = :app_name

-- name: mark_ongoing
UPDATE crontabber
SET ongoing = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
    heartbeat = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
    lease_expires = strftime(
        '%Y-%m-%d %H:%M:%f000', 'now', printf('%+f seconds', :lease_seconds)
    ),
    ongoing_host = :host,
    ongoing_pid = :pid,
    ongoing_token = :token,
    depends_on = :depends_on,
    fence = fence + 1,
    cancel_requested = NULL
WHERE app_name = :app_name
RETURNING
    depends_on, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, cancel_requested

-- name: recover
UPDATE crontabber AS c
SET error_count = coalesce(c.error_count, 0) + 1,
    last_error = :error,
    last_run = c.ongoing,
    first_run = coalesce(c.first_run, c.ongoing),
    next_run = strftime(
        '%Y-%m-%d %H:%M:%f000', 'now', printf('%+f seconds', :retry_after_seconds)
    ),
    ongoing = NULL, heartbeat = NULL, lease_expires = NULL,
    ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL,
    run_now = NULL, run_now_displaced = NULL, cancel_requested = NULL
WHERE c.app_name = :app_name
    AND c.ongoing_token IS :abandoned_token
    AND ({abandoned}) IS NOT NULL
RETURNING
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested

-- name: beat
UPDATE crontabber
SET heartbeat = strftime('%Y-%m-%d %H:%M:%f000', 'now'),
    lease_expires = strftime(
        '%Y-%m-%d %H:%M:%f000', 'now', printf('%+f seconds', :lease_seconds)
    )
WHERE app_name = :app_name AND ongoing_token = :token
RETURNING cancel_requested

-- name: finish
UPDATE crontabber
SET next_run = :next_run,
    last_run = :started,
    first_run = coalesce(first_run, :started),
    last_success = CASE WHEN :failed THEN last_success ELSE :last_success END,
    error_count = CASE WHEN :failed THEN coalesce(error_count, 0) + 1 ELSE 0 END,
    last_error = CASE WHEN :failed THEN :error ELSE '{}' END,
    ongoing = NULL, heartbeat = NULL, lease_expires = NULL,
    ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL,
    run_now = NULL, run_now_displaced = NULL, cancel_requested = NULL
WHERE app_name = :app_name AND ongoing_token = :token
RETURNING
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested

-- name: insert_log
INSERT INTO crontabber_log
    (app_name, log_time, duration, success, exc_type, exc_value, exc_traceback,
     token, superseded, host, pid, trigger, output)
VALUES (:app_name, :log_time, :duration, :success, :exc_type, :exc_value, :exc_traceback,
    :token, :superseded, :host, :pid, :trigger, :output)
ON CONFLICT (token) DO NOTHING

-- name: logged_superseded
SELECT superseded FROM crontabber_log WHERE token = :token

-- name: record_date
UPDATE crontabber
SET last_success = :date, first_run = coalesce(first_run, :now)
WHERE app_name = :app_name AND ongoing_token = :token

-- name: select_state
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested
FROM crontabber
WHERE app_name = :app_name

-- name: delete_state
DELETE FROM crontabber WHERE app_name = :app_name

-- name: prune_log
DELETE FROM crontabber_log
WHERE id IN (
    SELECT id FROM crontabber_log
    WHERE log_time < :before
    ORDER BY log_time
    LIMIT :batch
)

-- Operators' actions (crontabber.actions): each a few statements in one BEGIN
-- IMMEDIATE transaction, audited in it (see sqlite.py).

-- name: pause
INSERT INTO crontabber_pause (app_name, since, until, reason, actor)
VALUES (:app_name, :db_now, :until, :reason, :actor)
ON CONFLICT (app_name) DO UPDATE
SET since = excluded.since, until = excluded.until, reason = excluded.reason,
    actor = excluded.actor

-- name: db_now
SELECT strftime('%Y-%m-%d %H:%M:%f000', 'now') AS db_now

-- name: resume
-- (RETURNING gives plain columns only: SQLite 3.40 answers an expression such as
-- "until IS NULL" wrongly there.)
DELETE FROM crontabber_pause
WHERE app_name = :app_name
RETURNING until

-- name: run_now_target
SELECT
    c.app_name, c.next_run, c.first_run, c.last_run, c.last_success, c.error_count,
    c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid, c.ongoing_token,
    c.heartbeat, c.lease_expires, c.fence, c.run_now, c.run_now_displaced, c.cancel_requested,
    {paused} AS paused
FROM crontabber AS c
WHERE c.app_name = :app_name

-- name: run_now
UPDATE crontabber
SET run_now = :db_now,
    run_now_displaced = CASE WHEN run_now IS NULL THEN next_run ELSE run_now_displaced END,
    next_run = CASE WHEN next_run IS NULL OR next_run > :db_now THEN :db_now
        ELSE next_run END
WHERE app_name = :app_name

-- name: cancel
UPDATE crontabber
SET cancel_requested = strftime('%Y-%m-%d %H:%M:%f000', 'now')
WHERE app_name = :app_name AND ongoing IS NOT NULL

-- name: audit
INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
VALUES (strftime('%Y-%m-%d %H:%M:%f000', 'now'), :action, :app_name, :reason, :detail, :actor)

-- name: audit_log
SELECT id, at, action, app_name, reason, detail, actor
FROM crontabber_audit
WHERE :app_name IS NULL OR app_name = :app_name
ORDER BY id DESC
LIMIT :limit

-- name: latest_action
SELECT max(id) AS id FROM crontabber_audit

-- The outbox of notifications (crontabber.notify): one sink per statement, the claim
-- in one BEGIN IMMEDIATE transaction (see sqlite.py).

-- name: record_event
INSERT INTO crontabber_notification
    (app_name, kind, about, sink, created, host, error, text, next_attempt)
SELECT :app_name, :kind, :about, :sink, strftime('%Y-%m-%d %H:%M:%f000', 'now'), :host,
    :error, :text, strftime('%Y-%m-%d %H:%M:%f000', 'now')
WHERE :quiet_seconds <= 0 OR NOT EXISTS (
    SELECT 1 FROM crontabber_notification AS n
    WHERE n.app_name = :app_name AND n.kind = :kind AND n.sink = :sink
        AND n.created > strftime(
            '%Y-%m-%d %H:%M:%f000', 'now', printf('-%f seconds', :quiet_seconds)
        )
)
ON CONFLICT (app_name, kind, about, sink) DO NOTHING

-- name: pending_notifications
SELECT id FROM crontabber_notification
WHERE status = 'pending' AND next_attempt <= strftime('%Y-%m-%d %H:%M:%f000', 'now')
    AND (lease_until IS NULL OR lease_until < strftime('%Y-%m-%d %H:%M:%f000', 'now'))
ORDER BY id
LIMIT :batch

-- name: lease_notification
UPDATE crontabber_notification
SET lease_until = strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('+%f seconds', :lease_seconds)),
    attempts = attempts + 1
WHERE id = :id
RETURNING id, app_name, kind, about, sink, created, host, error, text, attempts

-- name: notification_done
UPDATE crontabber_notification
SET status = :status,
    sent = CASE WHEN :status = 'sent' THEN strftime('%Y-%m-%d %H:%M:%f000', 'now') END,
    next_attempt = strftime('%Y-%m-%d %H:%M:%f000', 'now', printf('+%f seconds', :retry_seconds)),
    lease_until = NULL,
    delivery_error = :error
WHERE id = :id

-- name: recent_notifications
SELECT id, app_name, kind, about, sink, created, host, error, text, status, attempts,
    next_attempt, sent, delivery_error
FROM crontabber_notification
WHERE :app_name IS NULL OR app_name = :app_name
ORDER BY id DESC
LIMIT :limit

-- name: notification_counts
SELECT kind, status, count(*) AS count FROM crontabber_notification GROUP BY kind, status

-- The status page's reads (crontabber.web), on a connection with PRAGMA query_only.

-- name: log_page
SELECT
    (SELECT count(*) FROM crontabber_log WHERE app_name = :app_name) AS total,
    l.id, l.app_name, l.log_time, l.duration, l.success, l.exc_type, l.exc_value,
    l.exc_traceback, l.superseded, l.host, l.pid, l.trigger, l.output
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT * FROM crontabber_log
    WHERE app_name = :app_name
    ORDER BY log_time DESC, id DESC
    LIMIT :page_size OFFSET :page_offset
) AS l ON 1
ORDER BY l.log_time DESC, l.id DESC

-- name: log_totals
-- As on PostgreSQL; recent_ids a comma-separated list.
WITH top AS (SELECT coalesce(max(id), 0) AS id FROM crontabber_log)
SELECT
    g.app_name, g.runs, g.failures, n.id, n.log_time, n.duration, top.id AS top_id,
    (SELECT group_concat(l.id) FROM crontabber_log AS l WHERE l.id > top.id - :window)
        AS recent_ids
FROM top
LEFT JOIN (
    SELECT app_name, count(*) AS runs, sum(exc_type IS NOT NULL) AS failures
    FROM crontabber_log
    GROUP BY app_name
) AS g ON 1
LEFT JOIN crontabber_log AS n ON n.id = (
    SELECT l.id FROM crontabber_log AS l
    WHERE l.app_name = g.app_name
    ORDER BY l.log_time DESC, l.id DESC
    LIMIT 1
)

-- name: log_added
SELECT id, app_name, exc_type IS NOT NULL AS failed, log_time, duration
FROM crontabber_log
WHERE id > :after OR id IN (SELECT value FROM json_each(:ids))
    OR id = (SELECT max(id) FROM crontabber_log)
ORDER BY id

-- name: guard
-- In a job's own transaction: the claim still holds. SQLite has no row locks: the
-- job's transaction keeps a takeover out once it has written (or began IMMEDIATE).
SELECT fence FROM crontabber
WHERE app_name = :app_name AND ongoing_token = :token
