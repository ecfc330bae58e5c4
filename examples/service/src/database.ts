import { PGlite } from '@electric-sql/pglite'
import { PGLiteSocketServer } from '@electric-sql/pglite-socket'
import pg from 'pg'

/**
 * Where the replicas' database lives. With `DATABASE_URL`, a real PostgreSQL (a dedicated
 * schema is created and dropped afterwards); without it, an embedded PostgreSQL (PGlite)
 * served over the Postgres wire protocol on a loopback port, so every replica process
 * talks to the same database through `pg` with the same SQL.
 */
export interface DatabaseHandle {
  /** Connection settings for a replica's `pg.Pool`. */
  readonly config: pg.PoolConfig
  readonly schema: string
  readonly kind: 'postgresql' | 'pglite'
  close(): Promise<void>
}

export const SCHEMA_SQL = (schema: string) => `
CREATE SCHEMA IF NOT EXISTS ${schema};
CREATE TABLE IF NOT EXISTS ${schema}.products (
  id          integer PRIMARY KEY,
  name        text    NOT NULL,
  price_cents integer NOT NULL,
  stock       integer NOT NULL,
  version     integer NOT NULL DEFAULT 1,
  updated_at  timestamptz NOT NULL DEFAULT now(),
  -- the newest write-behind version persisted (--write-behind): older deliveries are ignored
  write_version bigint NOT NULL DEFAULT 0
);`

export async function seed(pool: pg.Pool, schema: string, count: number): Promise<void> {
  await pool.query(SCHEMA_SQL(schema))
  await pool.query(`TRUNCATE ${schema}.products`)
  const adjectives = ['Sturdy', 'Compact', 'Deluxe', 'Classic', 'Quiet', 'Rapid', 'Smart', 'Tiny']
  const nouns = ['Kettle', 'Lamp', 'Backpack', 'Keyboard', 'Chair', 'Bottle', 'Speaker', 'Notebook']
  const values: string[] = []
  const params: unknown[] = []
  for (let id = 1; id <= count; id++) {
    const name = `${adjectives[id % adjectives.length] ?? ''} ${nouns[(id * 7) % nouns.length] ?? ''} #${id}`
    params.push(id, name, 500 + ((id * 37) % 20_000), (id * 13) % 250)
    const b = params.length
    values.push(`($${b - 3}, $${b - 2}, $${b - 1}, $${b})`)
  }
  await pool.query(
    `INSERT INTO ${schema}.products (id, name, price_cents, stock) VALUES ${values.join(',')}`,
    params,
  )
}

/** `url`: a PostgreSQL URL, `null` for embedded PGlite, or (default) `DATABASE_URL` when set. */
export async function openDatabase(
  products = 1_000,
  url: string | null | undefined = process.env['DATABASE_URL'],
): Promise<DatabaseHandle> {
  const schema = `strata_demo_${process.pid}`
  if (url) {
    const config: pg.PoolConfig = { connectionString: url, max: 4 }
    const admin = new pg.Pool({ ...config, max: 1 })
    await seed(admin, schema, products)
    return {
      config,
      schema,
      kind: 'postgresql',
      async close() {
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
        await admin.end()
      },
    }
  }
  const db = await PGlite.create()
  const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: 64 })
  await server.start()
  const port = Number(server.getServerConn().split(':').pop())
  const config: pg.PoolConfig = {
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    max: 2,
  }
  const admin = new pg.Pool({ ...config, max: 1 })
  await seed(admin, schema, products)
  await admin.end()
  return {
    config,
    schema,
    kind: 'pglite',
    async close() {
      await server.stop()
      await db.close()
    },
  }
}
