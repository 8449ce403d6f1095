// Unbinds a binding in its own process with a route index that never answers (a TCP peer that
// accepts and stays silent): the MySQL transaction commits, the index write never completes, and
// the test SIGKILLs this process in between. Env: MYSQL_URL, ROUTE_INDEX_URL, REDIS_PREFIX, TENANT_ID, BINDING_ID.
import { numberHasher } from '../../../src/domain/number-hash';
import { BindingService } from '../../../src/bindings/binding-service';
import { createMysqlPool } from '../../../src/stores/mysql';
import { createRedis } from '../../../src/stores/redis';
import { RouteIndex } from '../../../src/stores/route-index';

const env = (name: string): string => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is required`);
  return v;
};

const routes = new RouteIndex(createRedis(env('ROUTE_INDEX_URL')), env('REDIS_PREFIX'), numberHasher('test-number-hash-key-0123456789abcdef'));
const registry = new BindingService(createMysqlPool(env('MYSQL_URL')), routes, undefined, { routeWriteTimeoutMs: 60_000 });
registry.unbind(env('TENANT_ID'), env('BINDING_ID')).then(
  () => process.stdout.write('answered\n'),
  (err: unknown) => process.stderr.write(`unbind failed: ${String(err)}\n`),
);
