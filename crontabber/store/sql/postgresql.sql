-- Every statement crontabber sends to PostgreSQL while it runs jobs, by name.
-- The connection is in autocommit: each statement is its own transaction and
-- one round trip. Parameters are psycopg2's %(name)s. The lease rule is the
-- {abandoned} fragment, used by the claim and by the recovery; it is the one
-- place where a claim is found abandoned.
--
-- The columns of a job's row, in this order, are STATE_COLUMNS in crontabber/store/schema.py.

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

-- name: claimed_by
-- What a claim sets on the row c, besides its token: now, a lease from now, the
-- holder, and the next fence number.
ongoing = clock_timestamp(),
heartbeat = clock_timestamp(),
lease_expires = clock_timestamp() + make_interval(secs => %(lease_seconds)s),
ongoing_host = %(host)s,
ongoing_pid = %(pid)s,
fence = c.fence + 1

-- name: states_read
-- The schema's revision, the database's time and the rows c with the lease rule's
-- verdict on each claim (one row with no job when there are none); the rows are
-- joined by the statement.
SELECT
    (SELECT string_agg(version_num, ',') FROM crontabber_alembic_version) AS revision,
    clock_timestamp() AS db_now,
    c.app_name, c.next_run, c.first_run, c.last_run, c.last_success, c.error_count,
    c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid, c.ongoing_token,
    c.heartbeat, c.lease_expires, c.fence, {abandoned} AS abandoned,
    (SELECT min(log_time) FROM crontabber_log) AS oldest_log,
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
    SELECT c.*, clock_timestamp() AS db_now, {abandoned} AS abandoned
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
    locked.db_now, locked.abandoned, claimed.app_name IS NOT NULL AS claimed
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
    ongoing_token, heartbeat, lease_expires, fence, NULL::boolean AS logged,
    NULL::boolean AS logged_before
FROM claimed
UNION ALL
SELECT
    'seen', c.app_name, c.next_run, c.first_run, c.last_run, c.last_success,
    c.error_count, c.depends_on, c.last_error, c.ongoing, c.ongoing_host, c.ongoing_pid,
    c.ongoing_token, c.heartbeat, c.lease_expires, c.fence, NULL, NULL
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
        ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL
    WHERE c.app_name = %(app_name)s
        AND c.ongoing = %(abandoned_since)s
        AND c.ongoing_token IS NOT DISTINCT FROM %(abandoned_token)s
        AND ({abandoned}) IS NOT NULL
    RETURNING c.*
), logged AS (
    INSERT INTO crontabber_log
        (app_name, log_time, duration, success, exc_type, exc_value, exc_traceback,
         token, superseded)
    SELECT app_name, clock_timestamp(), clock_timestamp() - %(abandoned_since)s, NULL,
        %(exc_type)s, %(exc_value)s, '', %(log_token)s, false
    FROM recovered
    ON CONFLICT (token) DO NOTHING
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence
FROM recovered

-- name: beat
UPDATE crontabber
SET heartbeat = clock_timestamp(),
    lease_expires = clock_timestamp() + make_interval(secs => %(lease_seconds)s)
WHERE app_name = %(app_name)s AND ongoing_token = %(token)s

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
        ongoing_host = NULL, ongoing_pid = NULL, ongoing_token = NULL
    WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
    RETURNING *
), logged AS (
    INSERT INTO crontabber_log
        (app_name, log_time, duration, success, exc_type, exc_value, exc_traceback,
         token, superseded)
    SELECT %(app_name)s, %(finished)s, %(duration)s, %(success)s, %(exc_type)s,
        %(exc_value)s, %(exc_traceback)s, %(token)s, NOT EXISTS (SELECT 1 FROM released)
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
        (app_name, log_time, duration, success, token, superseded)
    SELECT app_name, %(now)s, %(duration)s, %(date)s, %(log_token)s, false
    FROM progressed
    ON CONFLICT (token) DO NOTHING
)
SELECT count(*) FROM progressed

-- name: select_state
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence
FROM crontabber
WHERE app_name = %(app_name)s

-- name: reset
-- Forget a job's state unless it is ongoing (or forced), waiting for a claim in
-- progress: one statement. Returns the row as it was and whether it was deleted.
WITH target AS (
    SELECT * FROM crontabber WHERE app_name = %(app_name)s FOR UPDATE
), deleted AS (
    DELETE FROM crontabber AS c
    USING target
    WHERE c.app_name = target.app_name AND (target.ongoing IS NULL OR %(force)s)
    RETURNING c.app_name
)
SELECT
    app_name, next_run, first_run, last_run, last_success, error_count, depends_on,
    last_error, ongoing, ongoing_host, ongoing_pid, ongoing_token, heartbeat, lease_expires,
    fence, EXISTS (SELECT 1 FROM deleted) AS deleted
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

-- The status page's reads (crontabber.web), sent on a read-only session of their own.

-- name: log_page
-- A page of one job's crontabber_log rows, newest first (page_size rows from
-- page_offset), and how many rows the job has: one row with no run when the page
-- is empty.
SELECT
    (SELECT count(*) FROM crontabber_log WHERE app_name = %(app_name)s) AS total,
    l.id, l.app_name, l.log_time, l.duration, l.success, l.exc_type, l.exc_value,
    l.exc_traceback, l.superseded
FROM (SELECT 1) AS one
LEFT JOIN (
    SELECT * FROM crontabber_log
    WHERE app_name = %(app_name)s
    ORDER BY log_time DESC, id DESC
    LIMIT %(page_size)s OFFSET %(page_offset)s
) AS l ON true
ORDER BY l.log_time DESC, l.id DESC

-- name: log_counts
-- Per app name in crontabber_log: its rows, those that record a failure, and the
-- duration of the newest.
SELECT counts.app_name, counts.runs, counts.failures, newest.duration AS last_duration
FROM (
    SELECT app_name, count(*) AS runs, count(*) FILTER (WHERE exc_type IS NOT NULL) AS failures
    FROM crontabber_log
    GROUP BY app_name
) AS counts
LEFT JOIN LATERAL (
    SELECT l.duration FROM crontabber_log AS l
    WHERE l.app_name = counts.app_name
    ORDER BY l.log_time DESC, l.id DESC
    LIMIT 1
) AS newest ON true

-- name: guard
-- In a job's own transaction: the claim still holds, and stays held until that
-- transaction ends. FOR KEY SHARE conflicts with a takeover's FOR UPDATE NOWAIT, not
-- with the holder's own heartbeat or outcome (which change no key). No row: lost.
SELECT fence FROM crontabber
WHERE app_name = %(app_name)s AND ongoing_token = %(token)s
FOR KEY SHARE
