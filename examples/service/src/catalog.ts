import type pg from 'pg'

export interface Product {
  id: number
  name: string
  priceCents: number
  stock: number
  version: number
  updatedAt: string
}

interface Row {
  id: number
  name: string
  price_cents: number
  stock: number
  version: number
  updated_at: Date | string
}

const toProduct = (r: Row): Product => ({
  id: r.id,
  name: r.name,
  priceCents: r.price_cents,
  stock: r.stock,
  version: r.version,
  updatedAt: new Date(r.updated_at).toISOString(),
})

/** The source of truth: plain SQL, the same on PostgreSQL and PGlite. */
export class Catalog {
  readonly #pool: pg.Pool
  readonly #t: string
  /** Reads that reached the database (find / findMany), for the demo's figures. */
  reads = 0

  constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool
    this.#t = `${schema}.products`
  }

  async find(id: number): Promise<Product | null> {
    this.reads++
    const { rows } = await this.#pool.query<Row>(`SELECT * FROM ${this.#t} WHERE id = $1`, [id])
    return rows[0] ? toProduct(rows[0]) : null
  }

  async findMany(ids: number[]): Promise<Map<number, Product>> {
    this.reads++
    const { rows } = await this.#pool.query<Row>(
      `SELECT * FROM ${this.#t} WHERE id = ANY($1::int[])`,
      [ids],
    )
    return new Map(rows.map((r) => [r.id, toProduct(r)]))
  }

  async update(
    id: number,
    patch: { name?: string; priceCents?: number; stock?: number },
  ): Promise<Product | null> {
    const { rows } = await this.#pool.query<Row>(
      `UPDATE ${this.#t}
          SET name = COALESCE($2, name), price_cents = COALESCE($3, price_cents), stock = COALESCE($4, stock),
              version = version + 1, updated_at = now()
        WHERE id = $1 RETURNING *`,
      [id, patch.name ?? null, patch.priceCents ?? null, patch.stock ?? null],
    )
    return rows[0] ? toProduct(rows[0]) : null
  }

  /**
   * Write-behind persistence: each row is written only if its write version is newer
   * than the one the row holds, so duplicate and late deliveries change nothing.
   */
  async saveMany(items: readonly { id: string; value: Product; version: number }[]): Promise<void> {
    if (items.length === 0) return
    await this.#pool.query(
      `UPDATE ${this.#t} AS t
          SET name = v.name, price_cents = v.price, stock = v.stock, version = t.version + 1,
              updated_at = now(), write_version = v.wv
         FROM unnest($1::int[], $2::text[], $3::int[], $4::int[], $5::bigint[]) AS v(id, name, price, stock, wv)
        WHERE t.id = v.id AND t.write_version < v.wv`,
      [
        items.map((i) => Number(i.id)),
        items.map((i) => i.value.name),
        items.map((i) => i.value.priceCents),
        items.map((i) => i.value.stock),
        items.map((i) => i.version),
      ],
    )
  }

  /** Every product id (the Bloom guard's build and rebuilds read it). */
  async *allIds(): AsyncIterable<string> {
    const { rows } = await this.#pool.query<{ id: number }>(`SELECT id FROM ${this.#t} ORDER BY id`)
    for (const r of rows) yield String(r.id)
  }

  /** The write-behind version each row holds (for the demo's "0 lost" check). */
  async writeVersions(): Promise<Map<number, number>> {
    const { rows } = await this.#pool.query<{ id: number; write_version: string }>(
      `SELECT id, write_version FROM ${this.#t} WHERE write_version > 0`,
    )
    return new Map(rows.map((r) => [r.id, Number(r.write_version)]))
  }

  async remove(id: number): Promise<boolean> {
    const { rowCount } = await this.#pool.query(`DELETE FROM ${this.#t} WHERE id = $1`, [id])
    return (rowCount ?? 0) > 0
  }
}
