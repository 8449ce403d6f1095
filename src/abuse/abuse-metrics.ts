/** Which limit refused a request: the label of the refusal metric. */
export type AbuseLimitName = 'calls_per_caller' | 'bindings_per_number' | 'tenant_requests' | 'blacklist';

/** What abuse control reports to the metrics registry. */
export interface AbuseMetrics {
  refused(limit: AbuseLimitName): void;
  flagged(kind: string): void;
  /** The disposal policy quarantined an X or blocked a number. */
  acted(action: 'quarantine' | 'block'): void;
}

export const NO_ABUSE_METRICS: AbuseMetrics = { refused: () => undefined, flagged: () => undefined, acted: () => undefined };
