// Pure helpers of an image pull: how a reference splits into the Engine's fromImage/tag, and a
// running summary of the pull's progress stream (per-layer events) that fits on one line.

/** fromImage and tag (or digest) as POST /images/create wants them; a missing tag means "latest", never "all tags". */
export function splitReference(ref: string): { fromImage: string; tag: string } {
  const at = ref.indexOf("@");
  if (at >= 0) return { fromImage: ref.slice(0, at), tag: ref.slice(at + 1) };
  const lastSlash = ref.lastIndexOf("/");
  const colon = ref.lastIndexOf(":");
  if (colon > lastSlash) return { fromImage: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { fromImage: ref, tag: "latest" };
}

/** The repository of a reference, without tag or digest: "host:5000/app:v1@sha256:…" → "host:5000/app". */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf("@");
  const named = at >= 0 ? ref.slice(0, at) : ref;
  const colon = named.lastIndexOf(":");
  return colon > named.lastIndexOf("/") ? named.slice(0, colon) : named;
}

/**
 * The registry's answer in a failed manifest lookup, short enough for a preview's diff: the engine's
 * words without the call's preamble, on one line ("unauthorized: authentication required").
 */
export function registryAnswer(error: unknown): string {
  const message = (error as Error)?.message ?? String(error);
  const answered = /answered (\d+): ([\s\S]*)$/.exec(message);
  const text = (answered ? `${answered[2]} (${answered[1]})` : message).replace(/\s+/g, " ").trim();
  return text.length > 240 ? `${text.slice(0, 237)}...` : text;
}

/** One event of the Engine's pull stream. */
export interface PullEvent {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/** Sums up a pull stream: layers seen and done, bytes downloaded of the known totals. */
export class PullProgress {
  private readonly layers = new Map<string, { done: boolean; current: number; total: number }>();
  readonly startedAt = Date.now();
  error?: string;

  constructor(readonly ref: string) {}

  update(event: PullEvent): void {
    if (event.error || event.errorDetail?.message) {
      this.error = event.errorDetail?.message ?? event.error;
      return;
    }
    const status = event.status ?? "";
    // Layer events carry a 12-hex-digit id; others ("Pulling from …", "Digest: …") do not.
    if (!event.id || !/^[a-f0-9]{12}$/.test(event.id)) return;
    const layer = this.layers.get(event.id) ?? { done: false, current: 0, total: 0 };
    if (status === "Downloading" && event.progressDetail) {
      layer.current = event.progressDetail.current ?? layer.current;
      layer.total = event.progressDetail.total ?? layer.total;
    }
    if (status === "Download complete" && layer.total) layer.current = layer.total;
    if (status === "Pull complete" || status === "Already exists") layer.done = true;
    this.layers.set(event.id, layer);
  }

  get layersDone(): number {
    return [...this.layers.values()].filter((l) => l.done).length;
  }

  line(): string {
    const layers = [...this.layers.values()];
    const current = layers.reduce((sum, l) => sum + l.current, 0);
    const total = layers.reduce((sum, l) => sum + l.total, 0);
    const bytes = total ? `, ${mb(current)}/${mb(total)} MB downloaded` : "";
    return `pulling ${this.ref}: ${this.layersDone}/${layers.length} layers${bytes}, ${((Date.now() - this.startedAt) / 1000).toFixed(1)} s`;
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(1);
}
