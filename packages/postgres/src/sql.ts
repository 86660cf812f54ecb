/**
 * Every statement the broker runs, for one schema. Each is one round trip whatever the batch size:
 * a publish batch (every queue of a tick), a fetch, a settlement batch (every operation of an
 * event-loop turn). Times come from the server's clock (`now_ms()`), taken once per statement
 * where an index bound needs it (an uncorrelated subquery is evaluated once).
 */
export interface Statements {
  readonly publish: string;
  readonly fetch: string;
  readonly nextDue: string;
  readonly settle: string;
  readonly counts: string;
  readonly listDead: string;
  readonly removeDead: string;
  readonly purge: string;
  readonly expireDedupe: string;
}

export function statements(s: string, channel: string): Statements {
  const now = `(SELECT ${s}.now_ms())`;
  return {
    // $1 queues, $2 job ids, $3 bodies, $4 priorities, $5 delays (ms), $6 dedupe flags, $7 window (ms).
    // Returns the ordinals (1-based) of the messages stored; the others were duplicates.
    publish: `WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[], $5::bigint[], $6::boolean[])
          WITH ORDINALITY AS t(queue, job_id, body, priority, delay, dedupe, ord)
      ), fresh AS (
        INSERT INTO ${s}.dedupe AS d (queue, job_id, expires_at)
        SELECT queue, job_id, ${now} + $7 FROM input WHERE dedupe ORDER BY queue, job_id
        ON CONFLICT (queue, job_id) DO UPDATE SET expires_at = excluded.expires_at WHERE d.expires_at <= ${now}
        RETURNING queue, job_id
      ), stored AS (
        SELECT i.* FROM input i
        WHERE NOT i.dedupe OR EXISTS (SELECT 1 FROM fresh f WHERE f.queue = i.queue AND f.job_id = i.job_id)
      ), ins AS (
        INSERT INTO ${s}.messages (queue, job_id, body, priority, visible_at)
        SELECT queue, job_id, body, priority, ${now} + delay FROM stored ORDER BY ord
      ), woken AS (
        SELECT pg_notify('${channel}', q) FROM (SELECT DISTINCT queue AS q FROM stored) z
      )
      SELECT ord::int AS ord FROM stored UNION ALL SELECT NULL FROM woken`,
    // $1 queue, $2 how many, $3 lease (ms). Highest priority first, then by when each became ready.
    fetch: `WITH picked AS (
        SELECT c.id, c.visible_at AS was, p.ord FROM unnest(ARRAY[4, 3, 2, 1, 0]::smallint[]) WITH ORDINALITY AS p(level, ord)
        CROSS JOIN LATERAL (
          SELECT id, visible_at FROM ${s}.messages
          WHERE queue = $1 AND priority = p.level AND visible_at <= ${now}
          ORDER BY visible_at, id LIMIT $2 FOR UPDATE SKIP LOCKED
        ) c
        LIMIT $2
      )
      UPDATE ${s}.messages m SET token = nextval('${s}.tokens'), deliveries = m.deliveries + 1, visible_at = ${now} + $3
      FROM picked WHERE m.id = picked.id
      RETURNING m.token::text AS token, m.deliveries, m.body, picked.ord, picked.was::text AS was, m.id::text AS id`,
    // $1 queue: ms until the next message becomes visible (due, or its lease runs out); null when none.
    nextDue: `SELECT (min(visible_at) - ${now})::text AS next FROM ${s}.messages WHERE queue = $1`,
    // Every settlement of a turn. Each names its delivery by token and applies only while that
    // delivery still holds its lease. Returns the tokens that applied.
    // $1 acks; $2,$3 extends (token, ms); $4..$7 retries (token, body, priority, delay);
    // $8,$9 defers (token, delay); $10..$14 dead letters (token, body, reason, error, failedAt);
    // $15,$16 releases (token, 1 when the delivery is undone: its count goes back).
    settle: `WITH a AS (
        DELETE FROM ${s}.messages WHERE token = ANY($1::bigint[]) AND visible_at > ${now} RETURNING token
      ), e AS (
        UPDATE ${s}.messages m SET visible_at = ${now} + x.ms FROM unnest($2::bigint[], $3::bigint[]) AS x(token, ms)
        WHERE m.token = x.token AND m.visible_at > ${now} RETURNING m.token
      ), r AS (
        UPDATE ${s}.messages m SET body = x.body, priority = x.priority, visible_at = ${now} + x.delay, deliveries = 0, token = NULL
        FROM unnest($4::bigint[], $5::text[], $6::smallint[], $7::bigint[]) AS x(token, body, priority, delay)
        WHERE m.token = x.token AND m.visible_at > ${now} RETURNING x.token, m.queue
      ), f AS (
        UPDATE ${s}.messages m SET visible_at = ${now} + x.delay, deliveries = 0, token = NULL
        FROM unnest($8::bigint[], $9::bigint[]) AS x(token, delay)
        WHERE m.token = x.token AND m.visible_at > ${now} RETURNING x.token, m.queue
      ), d AS (
        DELETE FROM ${s}.messages m
        USING unnest($10::bigint[], $11::text[], $12::text[], $13::text[], $14::bigint[]) WITH ORDINALITY AS x(token, body, reason, error, failed_at, ord)
        WHERE m.token = x.token AND m.visible_at > ${now}
        RETURNING x.token, m.queue, x.body, x.reason, x.error, x.failed_at, x.ord
      ), di AS (
        INSERT INTO ${s}.dead_letters (queue, body, reason, error, failed_at)
        SELECT queue, body, reason, error, failed_at FROM d ORDER BY ord
      ), l AS (
        UPDATE ${s}.messages m SET visible_at = 0, deliveries = greatest(0, m.deliveries - x.undo), token = NULL
        FROM unnest($15::bigint[], $16::int[]) AS x(token, undo)
        WHERE m.token = x.token AND m.visible_at > ${now} RETURNING x.token, m.queue
      ), woken AS (
        SELECT pg_notify('${channel}', q) FROM (SELECT DISTINCT queue AS q FROM (SELECT queue FROM r UNION ALL SELECT queue FROM f UNION ALL SELECT queue FROM l) w) z
      )
      SELECT token::text AS token FROM a UNION ALL SELECT token::text FROM e UNION ALL SELECT token::text FROM r
      UNION ALL SELECT token::text FROM f UNION ALL SELECT token::text FROM d UNION ALL SELECT token::text FROM l
      UNION ALL SELECT NULL FROM woken`,
    counts: `WITH n AS (SELECT ${s}.now_ms() AS t)
      SELECT
        (SELECT count(*) FROM ${s}.messages, n WHERE queue = $1 AND visible_at <= n.t)::int AS waiting,
        (SELECT count(*) FROM ${s}.messages, n WHERE queue = $1 AND visible_at > n.t AND token IS NULL)::int AS delayed,
        (SELECT count(*) FROM ${s}.messages, n WHERE queue = $1 AND visible_at > n.t AND token IS NOT NULL)::int AS active,
        (SELECT count(*) FROM ${s}.dead_letters WHERE queue = $1)::int AS dead`,
    listDead: `SELECT id::text AS key, body, reason, error, failed_at::text AS failed_at FROM ${s}.dead_letters
      WHERE queue = $1 ORDER BY id LIMIT $2 OFFSET $3`,
    removeDead: `DELETE FROM ${s}.dead_letters WHERE queue = $1 AND id = ANY($2::bigint[])`,
    // Deliveries in flight stay settleable; everything else of the queue goes.
    purge: `WITH m AS (DELETE FROM ${s}.messages WHERE queue = $1 AND (token IS NULL OR visible_at <= ${now}))
      DELETE FROM ${s}.dead_letters WHERE queue = $1`,
    expireDedupe: `DELETE FROM ${s}.dedupe WHERE ctid IN (SELECT ctid FROM ${s}.dedupe WHERE expires_at < ${now} LIMIT 10000)`,
  };
}
