// Metric label values from an open set (sequence names) kept to a bound: the first `max` values
// seen keep series of their own, later ones share OTHER_LABEL, so a process serving many names
// cannot grow Prometheus without bound. Values are never forgotten (their series would come back
// under another label at the next scrape). A summed counter of the group drops when one of its
// members stops being reported (an edge that unloads a sequence): Prometheus reads that as a reset.

/** The label value of everything past the bound: no sequence name has parentheses. */
export const OTHER_LABEL = "(other)";

export class BoundedLabels {
  private readonly named = new Set<string>();
  constructor(readonly max: number) {}

  of(value: string): string {
    if (this.named.has(value)) return value;
    if (this.named.size >= this.max) return OTHER_LABEL;
    this.named.add(value);
    return value;
  }
}
