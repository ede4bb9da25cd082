-- Every statement crontabber sends to PostgreSQL while it runs jobs, by name.
-- The connection is in autocommit: each statement is its own transaction and
-- one round trip. Parameters are psycopg2's %(name)s. The lease rule is the
-- {abandoned} fragment, used by the claim and by the recovery; it is the one
-- place where a claim is found abandoned.
--
-- The columns of a job's row, in this order, are STATE_COLUMNS in crontabber/store/schema.py.

-- name: timeouts
-- Sent before a statement, in the same query string (crontabber.store.session's
-- server_timeouts): one round trip, and, in autocommit, one implicit transaction, so
-- SET LOCAL holds for that statement alone and no session state outlives it (safe
-- behind a transaction-pooling PgBouncer). The server ends a statement that waits
-- for a lock longer than lock_timeout (55P03, unlike NOWAIT's raised by
-- ProcessInterrupts), or runs longer than statement_timeout (57014), before the
-- client's deadline would shut the connection down. Not sent when the connection's
-- own settings are these already (session_timeouts).
SET LOCAL lock_timeout = %(lock_timeout_ms)s;
SET LOCAL statement_timeout = %(statement_timeout_ms)s

-- name: session_timeouts
-- The connection's own lock_timeout and statement_timeout, in milliseconds: those
-- asked for at connect (libpq's options, "-c lock_timeout=..."), unless something
-- between (a PgBouncer that ignores the options) dropped them. Asked once per
-- connection, before its second statement: while they are unconfirmed, every
-- statement carries the timeouts above.
SELECT
    (SELECT setting FROM pg_settings WHERE name = 'lock_timeout') AS lock_timeout_ms,
    (SELECT setting FROM pg_settings WHERE name = 'statement_timeout') AS statement_timeout_ms

-- name: timeline
-- The server's timeline (a promotion starts a new one), or NULL on a standby.
CASE WHEN NOT pg_is_in_recovery()
    THEN ('x' || left(pg_walfile_name(pg_current_wal_lsn()), 8))::bit(32)::int
END

-- name: up_since
-- Since when the server has been up and writable: the later of its start (a restart
-- resets it) and the first time a crontabber saw its timeline (a promotion starts a
-- new one); now, while this timeline is not yet recorded.
greatest(
    pg_postmaster_start_time(),
    COALESCE(
        (SELECT t.since FROM crontabber_timeline AS t WHERE t.timeline = {timeline}),
        clock_timestamp()
    )
)

-- name: abandoned
-- Why the claim on the row c is abandoned ('pid', 'lease', 'age'), or NULL while it is live.
-- 'pid': its holder was on this host and its process is gone (the caller checked that
-- pid and passes that claim's token). 'lease': its lease lapsed in the database's
-- clock, time the server was down or failing over not counted: a lease lapses no
-- sooner than its window after {up_since}. 'age': it is older than the max age.
CASE
    WHEN c.ongoing IS NULL THEN NULL
    WHEN c.ongoing_token = %(dead_token)s THEN 'pid'
    WHEN c.lease_expires IS NOT NULL
        AND greatest(
            c.lease_expires,
            {up_since} + (c.lease_expires - c.heartbeat)
        ) < clock_timestamp() THEN 'lease'
    WHEN c.ongoing < clock_timestamp() - make_interval(secs => %(max_age_seconds)s) THEN 'age'
END

-- name: paused
-- Whether the job of the row c has a pause in force (until NULL, or not yet come).
EXISTS (
    SELECT 1 FROM crontabber_pause AS p
    WHERE p.app_name = c.app_name AND (p.until IS NULL OR p.until > clock_timestamp())
)

-- name: pauses
-- Every pause in force, as JSON (times as seconds since the epoch), or NULL.
(SELECT json_agg(json_build_object(
        'app_name', p.app_name, 'since', extract(epoch FROM p.since),
        'until', extract(epoch FROM p.until), 'reason', p.reason, 'actor', p.actor))
    FROM crontabber_pause AS p
    WHERE p.until IS NULL OR p.until > clock_timestamp())

-- name: claimed_by
-- What a claim sets on the row c, besides its token: now, a lease from now, the
-- holder, and the next fence number.
ongoing = clock_timestamp(),
heartbeat = clock_timestamp(),
lease_expires = clock_timestamp() + make_interval(secs => %(lease_seconds)s),
ongoing_host = %(host)s,
ongoing_pid = %(pid)s,
fence = c.fence + 1,
cancel_requested = NULL

-- name: states_read
-- The schema's revision, the database's time and the rows c with the lease rule's
-- verdict on each claim (one row with no job when there are none); the rows are
-- joined by the statement.
SELECT
    (SELECT string_agg(version_num, ',') FROM crontabber_alembic_version) AS revision,
    clock_timestamp() AS db_now,
    c.app_name, c.next_run, c.first_run, c.last_run, c.last_success, c.error_count,
    c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid, c.ongoing_token,
    c.heartbeat, c.lease_expires, c.fence, c.run_now, c.run_now_displaced, c.cancel_requested,
    {abandoned} AS abandoned,
    (SELECT min(log_time) FROM crontabber_log) AS oldest_log,
    {pauses} AS paused,
    (SELECT tl.timeline FROM (SELECT {timeline} AS timeline) AS tl
        WHERE NOT EXISTS (
            SELECT 1 FROM crontabber_timeline AS t WHERE t.timeline = tl.timeline
        )) AS unrecorded_timeline
FROM (SELECT 1) AS one

-- name: read_states
-- Every job's row (see states_read), in one statement.
{states_read}
LEFT JOIN crontabber AS c ON true

-- name: read_due_states
-- The rows a daemon between its full reads needs (see states_read): those due by
-- ahead_seconds from now (by the index on next_run; a claimed row keeps its due
-- next_run until its outcome), those that never ran, and those it names (the
-- dependencies, the claims it saw). One statement.
{states_read}
LEFT JOIN crontabber AS c ON (
    -- now(), not clock_timestamp(): the same instant in autocommit, and stable, so
    -- that the index on next_run can answer it
    c.next_run <= now() + make_interval(secs => %(ahead_seconds)s)
    OR c.next_run IS NULL
    OR c.app_name = ANY(%(app_names)s::text[])
)

-- name: record_timeline
-- The first time a crontabber sees the server on this timeline (after a promotion).
INSERT INTO crontabber_timeline (timeline, since)
SELECT tl.timeline, clock_timestamp() FROM (SELECT {timeline} AS timeline) AS tl
WHERE tl.timeline IS NOT NULL
ON CONFLICT (timeline) DO NOTHING

-- name: schema_revision
SELECT string_agg(version_num, ',') FROM crontabber_alembic_version

-- name: insert_state
INSERT INTO crontabber (app_name, depends_on, error_count)
VALUES (%(app_name)s, %(depends_on)s, 0)
ON CONFLICT (app_name) DO NOTHING

-- name: claim
-- Lock the row or fail at once (55P03), decide, and mark it ongoing when it is free
-- and still as the caller saw it (or forced): one statement. Each claim of a job
-- takes the next fence number. Returns the row as this left it (as it was locked,
-- when this did not claim it), the database's time, why its claim is abandoned
-- (if it is) and whether this claimed it.
WITH locked AS (
    SELECT c.*, clock_timestamp() AS db_now, {abandoned} AS abandoned, {paused} AS paused
    FROM crontabber AS c
    WHERE c.app_name = %(app_name)s
    FOR UPDATE NOWAIT
), claimed AS (
    UPDATE crontabber AS c
    SET {claimed_by},
        ongoing_token = %(token)s,
        depends_on = %(depends_on)s
    FROM locked
    WHERE c.app_name = locked.app_name
        AND locked.ongoing IS NULL
        AND NOT locked.paused
        AND (%(force)s OR locked.next_run IS NOT DISTINCT FROM %(seen_next_run)s)
    RETURNING c.*
)
SELECT
    locked.app_name, locked.next_run, locked.first_run, locked.last_run,
    locked.last_success, locked.error_count,
    COALESCE(claimed.depends_on, locked.depends_on) AS depends_on, locked.last_error,
    COALESCE(claimed.ongoing, locked.ongoing) AS ongoing,
    COALESCE(claimed.ongoing_host, locked.ongoing_host) AS ongoing_host,
    COALESCE(claimed.ongoing_pid, locked.ongoing_pid) AS ongoing_pid,
    COALESCE(claimed.ongoing_token, locked.ongoing_token) AS ongoing_token,
    COALESCE(claimed.heartbeat, locked.heartbeat) AS heartbeat,
    COALESCE(claimed.lease_expires, locked.lease_expires) AS lease_expires,
    COALESCE(claimed.fence, locked.fence) AS fence,
    locked.run_now, locked.run_now_displaced,
    COALESCE(claimed.cancel_requested, locked.cancel_requested) AS cancel_requested,
    locked.db_now, locked.abandoned, locked.paused, claimed.app_name IS NOT NULL AS claimed
FROM locked LEFT JOIN claimed ON true

-- name: insert_states
-- The rows of jobs that have none yet (their first run), in one statement.
INSERT INTO crontabber (app_name, depends_on, error_count)
SELECT j.app_name, ARRAY(SELECT json_array_elements_text(%(depends_on_json)s::json -> j.app_name)), 0
FROM unnest(%(app_names)s::text[]) AS j(app_name)
ON CONFLICT (app_name) DO NOTHING

-- name: next_claim
-- The CTEs that claim the first of the candidates, in the caller's order, that is free
-- and as the caller saw it (its next_run unchanged), skipping rows another process
-- has locked: hosts starting together take different jobs and never wait on or fail
-- against each other's rows. ``claimed`` is the row claimed, if any.
wanted AS (
    SELECT w.app_name, w.seen_next_run, w.position
    FROM unnest(%(app_names)s::text[], %(seen_next_runs)s::timestamptz[])
        WITH ORDINALITY AS w(app_name, seen_next_run, position)
), picked AS (
    SELECT c.app_name
    FROM crontabber AS c
    JOIN wanted AS w ON w.app_name = c.app_name
    WHERE c.app_name = ANY(%(app_names)s::text[])  -- the candidates' rows by the index
        AND c.ongoing IS NULL AND c.next_run IS NOT DISTINCT FROM w.seen_next_run
        AND NOT {paused}
    ORDER BY w.position
    LIMIT 1
    FOR UPDATE OF c SKIP LOCKED
), claimed AS (
    UPDATE crontabber AS c
    SET {claimed_by},
        ongoing_token = %(next_token)s,
        depends_on = ARRAY(SELECT json_array_elements_text(%(depends_on_json)s::json -> c.app_name))
    FROM picked
    WHERE c.app_name = picked.app_name
    RETURNING c.*
)

-- name: next_claim_rows
-- What the next_claim CTEs return, tagged: the claimed row ('claimed'), or, when none
-- could be claimed, every candidate's row as it stands ('seen'): running elsewhere,
-- run by another process meanwhile, or being claimed right now.
SELECT
    'claimed' AS kind, app_name, next_run, first_run, last_run, last_success,
    error_count, depends_on, last_error, ongoing, ongoing_host, ongoing_pid,
    ongoing_token, heartbeat, lease_expires, fence, run_now, run_now_displaced,
    cancel_requested, false AS paused, NULL::boolean AS logged, NULL::boolean AS logged_before
FROM claimed
UNION ALL
SELECT
    'seen', c.app_name, c.next_run, c.first_run, c.last_run, c.last_success,
    c.error_count, c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid,
    c.ongoing_token, c.heartbeat, c.lease_expires, c.fence, c.run_now, c.run_now_displaced,
    c.cancel_requested, {paused}, NULL, NULL
FROM crontabber AS c
WHERE c.app_name = ANY(%(app_names)s::text[]) AND NOT EXISTS (SELECT 1 FROM claimed)

-- name: claim_next
-- Claim the next job (see next_claim): one statement.
WITH {next_claim}
{next_claim_rows}

-- name: recover
-- Release a claim found abandoned, if it still is, as a failed run due again
-- retry_after_seconds later, and log it: one statement. Returns the row it left.
WITH recovered AS (
    UPDATE crontabber AS c
    SET error_count = coalesce(c.error_count, 0) + 1,
        last_error = %(error)s::json,
        last_run = c.ongoing,
        first_run = coalesce(c.first_run, c.ongoing),
        next_run = clock_timestamp() + make_interval(secs => %(retry_after_seconds)s),
        ongoing = NULL, heartbeat = NULL, lease_expires = NULL,
        ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL,
        run_now = NULL, run_now_displaced = NULL, cancel_requested = NULL
    WHERE c.app_name = %(app_name)s
        AND c.ongoing = %(abandoned_since)s
        AND c.ongoing_token IS NOT DISTINCT FROM %(abandoned_token)s
        AND ({abandoned}) IS NOT NULL
    RETURNING c.*
), logged AS (
    INSERT INTO crontabber_log
        (app_name, log_time, duration, success, exc_type, exc_value, exc_traceback,
         token, superseded, host, pid)
    SELECT app_name, clock_timestamp(), clock_timestamp() - %(abandoned_since)s, NULL,
        %(exc_type)s, %(exc_value)s, '', %(log_token)s, false, %(abandoned_host)s,
        %(abandoned_pid)s
    FROM recovered
    ON CONFLICT (token) DO NOTHING
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested
FROM recovered

-- name: beat
-- Renew the lease; no row when the claim is not ours. ``cancel``: an operator asked
-- the holder to stop the run.
UPDATE crontabber
SET heartbeat = clock_timestamp(),
    lease_expires = clock_timestamp() + make_interval(secs => %(lease_seconds)s)
WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
RETURNING cancel_requested IS NOT NULL AS cancel

-- name: finish_outcome
-- The CTEs that record an outcome and release the claim held under token, and log
-- the outcome (marked superseded when the claim is no longer ours), exactly once.
released AS (
    UPDATE crontabber
    SET next_run = %(next_run)s,
        last_run = %(started)s,
        first_run = coalesce(first_run, %(started)s),
        last_success = CASE WHEN %(failed)s THEN last_success ELSE %(last_success)s END,
        error_count = CASE WHEN %(failed)s THEN coalesce(error_count, 0) + 1 ELSE 0 END,
        last_error = CASE WHEN %(failed)s THEN %(error)s::json ELSE '{}'::json END,
        ongoing = NULL, heartbeat = NULL, lease_expires = NULL,
        ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL,
        run_now = NULL, run_now_displaced = NULL, cancel_requested = NULL
    WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
    RETURNING *
), logged AS (
    INSERT INTO crontabber_log
        (app_name, log_time, duration, success, exc_type, exc_value, exc_traceback,
         token, superseded, host, pid, trigger, output)
    SELECT %(app_name)s, %(finished)s, %(duration)s, %(success)s, %(exc_type)s,
        %(exc_value)s, %(exc_traceback)s, %(token)s, NOT EXISTS (SELECT 1 FROM released),
        %(host)s, %(pid)s, %(trigger)s, %(output)s
    ON CONFLICT (token) DO NOTHING
    RETURNING superseded
)

-- name: finish_row
-- What the finish_outcome CTEs return: the row they left (NULLs when the claim was
-- not ours), whether they logged, and, when an earlier attempt had logged, whether
-- that one was superseded.
SELECT
    'finished' AS kind, released.app_name, released.next_run, released.first_run,
    released.last_run, released.last_success, released.error_count, released.depends_on,
    released.last_error, released.ongoing, released.ongoing_host, released.ongoing_pid,
    released.ongoing_token, released.heartbeat, released.lease_expires, released.fence,
    released.run_now, released.run_now_displaced, released.cancel_requested, NULL AS paused,
    EXISTS (SELECT 1 FROM logged) AS logged,
    (SELECT superseded FROM crontabber_log WHERE token = %(token)s) AS logged_before
FROM (SELECT 1) AS one
LEFT JOIN released ON true

-- name: finish
-- Record an outcome (see finish_outcome): one statement.
WITH {finish_outcome}
{finish_row}

-- name: finish_claim_next
-- Record an outcome and claim the next job, in one statement (one round trip and one
-- transaction for two): the rows of finish and of claim_next, tagged by kind.
WITH {finish_outcome}, {next_claim}
{finish_row}
UNION ALL
{next_claim_rows}

-- name: record_date
-- A backfill job's progress: date succeeded, logged once; the claim stays held.
WITH progressed AS (
    UPDATE crontabber
    SET last_success = %(date)s, first_run = coalesce(first_run, %(now)s)
    WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
    RETURNING app_name
), logged AS (
    INSERT INTO crontabber_log
        (app_name, log_time, duration, success, token, superseded, host, pid, trigger, output)
    SELECT app_name, %(now)s, %(duration)s, %(date)s, %(log_token)s, false, %(host)s,
        %(pid)s, %(trigger)s, %(output)s
    FROM progressed
    ON CONFLICT (token) DO NOTHING
)
SELECT count(*) FROM progressed

-- name: select_state
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested
FROM crontabber
WHERE app_name = %(app_name)s

-- name: reset
-- Forget a job's state unless it is ongoing (or forced), waiting for a claim in
-- progress, and audit it as action (reset, or remove-ghost): one statement. Returns
-- the row as it was and whether it was deleted. A pause stays.
WITH target AS (
    SELECT * FROM crontabber WHERE app_name = %(app_name)s FOR UPDATE
), deleted AS (
    DELETE FROM crontabber AS c
    USING target
    WHERE c.app_name = target.app_name AND (target.ongoing IS NULL OR %(force)s)
    RETURNING c.app_name
), audited AS (
    INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
    SELECT clock_timestamp(), %(action)s, app_name, %(reason)s, %(detail)s, %(actor)s
    FROM deleted
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested,
    EXISTS (SELECT 1 FROM deleted) AS deleted
FROM target

-- name: prune_log
-- Delete up to batch log rows older than before, oldest first (one short statement;
-- the caller repeats it while it deletes a full batch).
DELETE FROM crontabber_log
WHERE id IN (
    SELECT id FROM crontabber_log
    WHERE log_time < %(before)s
    ORDER BY log_time
    LIMIT %(batch)s
)

-- Operators' actions (crontabber.actions): each one statement, audited in it.

-- name: pause
-- Pause a job (again: the new pause replaces the old) until the given time, or for
-- until_seconds from now, or until resumed (both NULL); nothing when that time has
-- passed. Returns the pause as set and the database's time.
WITH asked AS (
    SELECT clock_timestamp() AS db_now,
        COALESCE(
            %(until)s::timestamptz,
            clock_timestamp() + make_interval(secs => %(until_seconds)s)
        ) AS until
), paused AS (
    INSERT INTO crontabber_pause AS p (app_name, since, until, reason, actor)
    SELECT %(app_name)s, asked.db_now, asked.until, %(reason)s, %(actor)s
    FROM asked
    WHERE asked.until IS NULL OR asked.until > asked.db_now
    ON CONFLICT (app_name) DO UPDATE
    SET since = EXCLUDED.since, until = EXCLUDED.until, reason = EXCLUDED.reason,
        actor = EXCLUDED.actor
    RETURNING p.since, p.until
), audited AS (
    INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
    SELECT paused.since, 'pause', %(app_name)s, %(reason)s,
        'until ' || COALESCE(
            to_char(paused.until AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
            'resumed'),
        %(actor)s
    FROM paused
)
SELECT asked.db_now, asked.until, EXISTS (SELECT 1 FROM paused) AS paused
FROM asked

-- name: resume
-- End a job's pause; whether one was in force (an expired one is removed all the same).
WITH resumed AS (
    DELETE FROM crontabber_pause AS p
    WHERE p.app_name = %(app_name)s
    RETURNING p.until IS NULL OR p.until > clock_timestamp() AS in_force
), audited AS (
    INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
    SELECT clock_timestamp(), 'resume', %(app_name)s, %(reason)s, NULL, %(actor)s
    FROM resumed WHERE in_force
)
SELECT EXISTS (SELECT 1 FROM resumed WHERE in_force) AS resumed

-- name: run_now
-- Make a job due now (its row must exist), unless it is running or paused, keeping the
-- next run it brings forward (run_now_displaced) so that the schedule goes on as if it
-- had run on time. Returns the row as it was, whether it was paused, and whether this
-- asked for the run.
WITH target AS (
    SELECT c.*, {paused} AS paused
    FROM crontabber AS c
    WHERE c.app_name = %(app_name)s
    FOR NO KEY UPDATE
), asked AS (
    UPDATE crontabber AS c
    SET run_now = clock_timestamp(),
        run_now_displaced = CASE WHEN c.run_now IS NULL THEN c.next_run
            ELSE c.run_now_displaced END,
        next_run = least(c.next_run, clock_timestamp())
    FROM target
    WHERE c.app_name = target.app_name AND target.ongoing IS NULL AND NOT target.paused
    RETURNING c.app_name
), audited AS (
    INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
    SELECT clock_timestamp(), 'run-now', app_name, %(reason)s, NULL, %(actor)s
    FROM asked
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested, paused,
    EXISTS (SELECT 1 FROM asked) AS asked
FROM target

-- name: cancel
-- Ask the holder of a job's claim to stop the run (its next heartbeat reads it).
-- Returns the row as it was and whether this asked.
WITH asked AS (
    UPDATE crontabber AS c
    SET cancel_requested = clock_timestamp()
    WHERE c.app_name = %(app_name)s AND c.ongoing IS NOT NULL
    RETURNING c.app_name
), audited AS (
    INSERT INTO crontabber_audit (at, action, app_name, reason, detail, actor)
    SELECT clock_timestamp(), 'cancel', c.app_name, %(reason)s,
        'the run on ' || c.ongoing_host || ' pid ' || c.ongoing_pid, %(actor)s
    FROM crontabber AS c JOIN asked ON asked.app_name = c.app_name
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, run_now, run_now_displaced, cancel_requested,
    EXISTS (SELECT 1 FROM asked) AS asked
FROM crontabber
WHERE app_name = %(app_name)s

-- name: audit_log
-- The newest audit rows (of one job, or of all when app_name is NULL), newest first.
SELECT id, at, action, app_name, reason, detail, actor
FROM crontabber_audit
WHERE %(app_name)s::text IS NULL OR app_name = %(app_name)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: latest_action
-- The newest operator action (a sleeping daemon looks every second or so).
SELECT max(id) AS id FROM crontabber_audit

-- The outbox of notifications (crontabber.notify).

-- name: record_event
-- An event, once per destination: hosts that see the same thing (same job, kind and
-- instant) record one row each sink. quiet_seconds > 0: not when this job has had an
-- event of this kind recorded within that long (a failure streak's reminder). Returns
-- the ids recorded now.
INSERT INTO crontabber_notification
    (app_name, kind, about, sink, created, host, error, text, next_attempt)
SELECT %(app_name)s, %(kind)s, %(about)s, s.sink, clock_timestamp(), %(host)s, %(error)s,
    %(text)s, clock_timestamp()
FROM unnest(%(sinks)s::text[]) AS s(sink)
WHERE %(quiet_seconds)s <= 0 OR NOT EXISTS (
    SELECT 1 FROM crontabber_notification AS n
    WHERE n.app_name = %(app_name)s AND n.kind = %(kind)s AND n.sink = s.sink
        AND n.created > clock_timestamp() - make_interval(secs => %(quiet_seconds)s)
)
ON CONFLICT (app_name, kind, about, sink) DO NOTHING
RETURNING id

-- name: claim_notifications
-- Up to batch pending notifications due for an attempt that no live delivery holds,
-- leased to this host for lease_seconds, skipping rows another host is claiming.
WITH picked AS (
    SELECT id FROM crontabber_notification
    WHERE status = 'pending' AND next_attempt <= clock_timestamp()
        AND (lease_until IS NULL OR lease_until < clock_timestamp())
    ORDER BY id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
UPDATE crontabber_notification AS n
SET lease_until = clock_timestamp() + make_interval(secs => %(lease_seconds)s),
    attempts = n.attempts + 1
FROM picked
WHERE n.id = picked.id
RETURNING n.id, n.app_name, n.kind, n.about, n.sink, n.created, n.host, n.error, n.text,
    n.attempts

-- name: notification_done
-- A delivery's outcome: sent, or pending again retry_seconds later, or failed for good.
UPDATE crontabber_notification
SET status = %(status)s,
    sent = CASE WHEN %(status)s = 'sent' THEN clock_timestamp() END,
    next_attempt = clock_timestamp() + make_interval(secs => %(retry_seconds)s),
    lease_until = NULL,
    delivery_error = %(error)s
WHERE id = %(id)s

-- name: recent_notifications
-- The newest notifications (of one job, or of all when app_name is NULL).
SELECT id, app_name, kind, about, sink, created, host, error, text, status, attempts,
    next_attempt, sent, delivery_error
FROM crontabber_notification
WHERE %(app_name)s::text IS NULL OR app_name = %(app_name)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: notification_counts
-- How many notifications there are of each kind in each status.
SELECT kind, status, count(*) AS count FROM crontabber_notification GROUP BY kind, status

-- The status page's reads (crontabber.web), sent on a read-only session of their own.

-- name: log_page
-- A page of one job's crontabber_log rows, newest first (page_size rows from
-- page_offset), and how many rows the job has: one row with no run when the page
-- is empty.
SELECT
    (SELECT count(*) FROM crontabber_log WHERE app_name = %(app_name)s) AS total,
    l.id, l.app_name, l.log_time, l.duration, l.success, l.exc_type, l.exc_value,
    l.exc_traceback, l.superseded, l.host, l.pid, l.trigger, l.output
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT * FROM crontabber_log
    WHERE app_name = %(app_name)s
    ORDER BY log_time DESC, id DESC
    LIMIT %(page_size)s OFFSET %(page_offset)s
) AS l ON true
ORDER BY l.log_time DESC, l.id DESC

-- name: log_totals
-- crontabber_log counted in one snapshot, where a page's tally starts (see
-- crontabber.store.tally): per app name its rows, the failed ones and its newest row
-- (by log_time, then id); on every row, the highest id and the ids present among the
-- window below it. One row with a NULL app_name when the log is empty.
WITH top AS (
    SELECT coalesce(max(id), 0) AS id FROM crontabber_log
), recent AS (
    SELECT coalesce(array_agg(l.id), '{}') AS ids
    FROM crontabber_log AS l, top
    WHERE l.id > top.id - %(window)s
)
SELECT counts.app_name, counts.runs, counts.failures, newest.id, newest.log_time,
    newest.duration, top.id AS top_id, recent.ids AS recent_ids
FROM top CROSS JOIN recent
LEFT JOIN (
    SELECT app_name, count(*) AS runs, count(*) FILTER (WHERE exc_type IS NOT NULL) AS failures
    FROM crontabber_log
    GROUP BY app_name
) AS counts ON true
LEFT JOIN LATERAL (
    SELECT l.id, l.log_time, l.duration FROM crontabber_log AS l
    WHERE l.app_name = counts.app_name
    ORDER BY l.log_time DESC, l.id DESC
    LIMIT 1
) AS newest ON true

-- name: log_added
-- The log rows a tally has not counted: those after its highest id and the ids it
-- is still waiting for below it, and the highest row (is the log the one it counted?),
-- all by the primary key: no scan of the log.
SELECT id, app_name, exc_type IS NOT NULL AS failed, log_time, duration
FROM crontabber_log
WHERE id > %(after)s OR id = ANY(%(ids)s::int[])
    OR id = (SELECT max(id) FROM crontabber_log)
ORDER BY id

-- name: guard
-- In a job's own transaction: the claim still holds, and stays held until that
-- transaction ends. FOR KEY SHARE conflicts with a takeover's FOR UPDATE NOWAIT, not
-- with the holder's own heartbeat or outcome (which change no key). No row: lost.
SELECT fence FROM crontabber
WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
FOR KEY SHARE
