/**
 * The environment every end-to-end suite starts its controller with: the switch from
 * E2E_ESL_HOST/PORT/PASSWORD, the suite's own database and Redis prefix, an HTTP port of the
 * system's choosing, and the sipp phones' numbers dialled at their own addresses. A suite adds
 * or overrides what its call flow needs.
 */
import { testRedisPrefix } from '../../support/redis';

export interface E2eSwitch {
  readonly host: string;
  readonly port: number;
  readonly password: string;
}

export interface E2ePhoneAddress {
  readonly number: string;
  readonly port: number;
}

/** Dial strings that send each phone's number straight to its sipp process on `host`. */
export function phoneDialStrings(host: string, phones: readonly E2ePhoneAddress[]): Record<string, string> {
  return Object.fromEntries(phones.map((p) => [p.number, `sofia/internal/${p.number}@${host}:${p.port}`]));
}

export function e2eControllerEnv(
  esl: E2eSwitch,
  databaseUrl: string,
  dialStrings: Record<string, string>,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ESL_HOST: esl.host,
    ESL_PORT: String(esl.port),
    ESL_PASSWORD: esl.password,
    MYSQL_URL: databaseUrl,
    REDIS_PREFIX: testRedisPrefix(),
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: '0',
    DIAL_STRING_OVERRIDES: JSON.stringify(dialStrings),
    LOG_LEVEL: 'warn',
    ...extra,
  };
}
