import {
  Inject,
  Injectable,
  Module,
  ServiceUnavailableException,
  type DynamicModule,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common'
import {
  CacheError,
  createCache,
  errors,
  invalidOption,
  type Cache,
  type CacheHealth,
  type CacheOptions,
  type Duration,
} from '@strata/core'
import { KeyvStrata } from '@strata/keyv'
import { createCache as createCacheManager } from 'cache-manager'
import Keyv from 'keyv'

/** Injection token of the Strata `Cache`. */
export const STRATA_CACHE = 'STRATA_CACHE'
/** The token `@nestjs/cache-manager` uses: code written against it gets a cache-manager over Strata. */
export const CACHE_MANAGER = 'CACHE_MANAGER'
const STRATA_OPTIONS = 'STRATA_MODULE_OPTIONS'

export interface StrataModuleOptions {
  /** A cache, or the options to create one with (`createCache`). */
  cache: Cache | CacheOptions
  /** Register the module globally. @default true */
  isGlobal?: boolean
}

export interface StrataModuleAsyncOptions {
  imports?: DynamicModule['imports']
  inject?: (string | symbol | (abstract new (...args: never[]) => unknown))[]
  useFactory: (...args: never[]) => StrataModuleOptions | Promise<StrataModuleOptions>
  isGlobal?: boolean
}

/** The cache `@Cached` and `@CacheEvict` use: the one the module created last in this process. */
let decoratorCache: Cache | undefined

function isCache(v: unknown): v is Cache {
  return typeof v === 'object' && v !== null && typeof (v as Cache).getOrSet === 'function'
}

/** Closes the cache when the application shuts down (`app.close()`, shutdown hooks). */
@Injectable()
class StrataLifecycle implements OnApplicationShutdown {
  constructor(@Inject(STRATA_CACHE) private readonly cache: Cache) {}
  async onApplicationShutdown(): Promise<void> {
    if (decoratorCache === this.cache) decoratorCache = undefined
    await this.cache.close()
  }
}

/** `{ [key]: { status: 'up' | 'down', cache: 'ok' | 'degraded' | 'down', l2, bus, … } }` */
export type IndicatorResult = Record<
  string,
  Omit<CacheHealth, 'status'> & { status: 'up' | 'down'; cache: CacheHealth['status'] }
>

/**
 * A Terminus-style health indicator: `check(key)` returns `{ [key]: { status, ...health } }`
 * (`up` unless the cache is `down`); `isHealthy(key)` throws a 503 with that result when down.
 */
@Injectable()
export class StrataHealthIndicator {
  constructor(@Inject(STRATA_CACHE) private readonly cache: Cache) {}

  async check(key = 'strata'): Promise<IndicatorResult> {
    const { status, ...rest } = await this.cache.health()
    return { [key]: { status: status === 'down' ? 'down' : 'up', cache: status, ...rest } }
  }

  async isHealthy(key = 'strata'): Promise<IndicatorResult> {
    const result = await this.check(key)
    if (result[key]?.status === 'down') throw new ServiceUnavailableException(result)
    return result
  }
}

const providers: Provider[] = [
  {
    provide: STRATA_CACHE,
    inject: [STRATA_OPTIONS],
    useFactory: (o: StrataModuleOptions) => {
      if (
        typeof (o as unknown) !== 'object' ||
        (o as Partial<StrataModuleOptions>).cache === undefined
      ) {
        throw invalidOption(
          'nestjs',
          'StrataModule',
          'needs { cache } (a cache or createCache options)',
        )
      }
      const cache = isCache(o.cache) ? o.cache : createCache(o.cache)
      decoratorCache = cache
      return cache
    },
  },
  {
    provide: CACHE_MANAGER,
    inject: [STRATA_CACHE],
    useFactory: (cache: Cache) =>
      createCacheManager({ stores: [new Keyv({ store: new KeyvStrata(cache) })] }),
  },
  StrataHealthIndicator,
  StrataLifecycle,
]
const exported = [STRATA_CACHE, CACHE_MANAGER, StrataHealthIndicator]

/**
 * `StrataModule.forRoot({ cache })` / `forRootAsync({ useFactory, inject })`: the cache by
 * token (`@Inject(STRATA_CACHE)`), a cache-manager over it under `CACHE_MANAGER`, the
 * health indicator, and `close()` on shutdown. See docs/nestjs.md.
 */
@Module({})
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- Nest modules are classes with static factories
export class StrataModule {
  static forRoot(options: StrataModuleOptions): DynamicModule {
    return {
      module: StrataModule,
      global: options.isGlobal ?? true,
      providers: [{ provide: STRATA_OPTIONS, useValue: options }, ...providers],
      exports: exported,
    }
  }

  static forRootAsync(options: StrataModuleAsyncOptions): DynamicModule {
    return {
      module: StrataModule,
      global: options.isGlobal ?? true,
      imports: options.imports ?? [],
      providers: [
        { provide: STRATA_OPTIONS, useFactory: options.useFactory, inject: options.inject ?? [] },
        ...providers,
      ],
      exports: exported,
    }
  }
}

type KeyOf = string | ((...args: never[]) => string)

function cacheFor(decorator: string): Cache {
  if (!decoratorCache) {
    throw invalidOption(
      'nestjs',
      decorator,
      'needs StrataModule.forRoot/forRootAsync in the application',
    )
  }
  return decoratorCache
}

/**
 * Caches the method's result through `getOrSet`: concurrent calls with one key share one
 * execution, across replicas too with `distributedLock`. `key` is a string or a function
 * of the method's arguments.
 */
export function Cached(options: {
  key: KeyOf
  ttl?: Duration
  tags?: readonly string[]
  grace?: Duration
}): MethodDecorator {
  return (_target, _name, descriptor) => {
    const original = descriptor.value as unknown as (...args: unknown[]) => unknown
    const wrapped = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const key =
        typeof options.key === 'function'
          ? (options.key as (...a: unknown[]) => string)(...args)
          : options.key
      return cacheFor('@Cached')
        .getOrSet(key, () => original.apply(this, args), {
          ttl: options.ttl,
          tags: options.tags,
          grace: options.grace,
        })
        .catch((err: unknown) => {
          // The method's own exception (a NotFoundException, …) reaches Nest unchanged.
          throw CacheError.is(err, errors.E_LOADER_ERROR) && err.cause !== undefined
            ? err.cause
            : err
        })
    }
    ;(descriptor as PropertyDescriptor).value = wrapped
    return descriptor
  }
}

/** After the method resolves, deletes `keys` and/or invalidates `tags` on every replica. */
export function CacheEvict(options: {
  keys?: (...args: never[]) => string[]
  tags?: readonly string[] | ((...args: never[]) => string[])
}): MethodDecorator {
  return (_target, _name, descriptor) => {
    const original = descriptor.value as unknown as (...args: unknown[]) => unknown
    const wrapped = async function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const result = await original.apply(this, args)
      const cache = cacheFor('@CacheEvict')
      const keys = options.keys ? (options.keys as (...a: unknown[]) => string[])(...args) : []
      if (keys.length > 0) await cache.deleteMany(keys)
      const tags =
        typeof options.tags === 'function'
          ? (options.tags as (...a: unknown[]) => string[])(...args)
          : options.tags
      if (tags && tags.length > 0) await cache.invalidateTags(tags)
      return result
    }
    ;(descriptor as PropertyDescriptor).value = wrapped
    return descriptor
  }
}
