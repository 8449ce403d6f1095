/**
 * Which switches the controller drives, by the Core-UUID each one carries in every event and in
 * the CHANNEL_DATA of an outbound-socket connection. A connection to the outbound socket is
 * acted on only when its channel data names a switch that the controller's own (authenticated)
 * inbound connection reports: a peer that merely reaches the port cannot make the controller
 * route anything. A switch restarts with a new Core-UUID, so an unknown one asks again, at most
 * once per `refreshAfterMs`.
 */
export class SwitchIdentity {
  private known = new Set<string>();
  private askedAt = -Infinity;
  private asking: Promise<void> | undefined;

  constructor(
    /** `api <command>` on the inbound connection of each switch of the fleet (as it is now: switches join and leave). */
    private readonly switches: () => ReadonlyArray<{ api(command: string): Promise<string> }>,
    private readonly refreshAfterMs = 1000,
  ) {}

  async isKnown(coreUuid: string | undefined, now: number = Date.now()): Promise<boolean> {
    if (!coreUuid) return false;
    if (this.known.has(coreUuid)) return true;
    if (now - this.askedAt >= this.refreshAfterMs) {
      this.askedAt = now;
      await this.refresh();
    } else {
      await this.asking;
    }
    return this.known.has(coreUuid);
  }

  refresh(): Promise<void> {
    this.asking ??= Promise.all(
      this.switches().map((s) =>
        s.api('global_getvar core_uuid').then(
          (id) => id.trim(),
          () => '',
        ),
      ),
    )
      .then((ids) => {
        this.known = new Set(ids.filter((id) => /^[0-9a-f-]{36}$/i.test(id)));
      })
      .finally(() => {
        this.asking = undefined;
      });
    return this.asking;
  }
}
