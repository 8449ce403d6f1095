/** Errors raised by the Event Socket layer. Flows can tell a dead link from a slow switch from a refusal. */
export class EslError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** No reply (or no BACKGROUND_JOB / EXECUTE_COMPLETE) within the command's timeout. A late reply is dropped. */
export class EslTimeoutError extends EslError {}

/** The socket is not connected, or dropped while the command was pending. */
export class EslDisconnectedError extends EslError {}

/** FreeSWITCH refused the password (`-ERR invalid`). */
export class EslAuthError extends EslError {}

/** FreeSWITCH answered the command itself with `-ERR ...` (e.g. `-ERR invalid session id [<uuid>]`). */
export class EslCommandError extends EslError {
  constructor(
    message: string,
    readonly reply: string,
  ) {
    super(message);
  }
}
