/**
 * The sidebar's model: it owns every call to /nbversion/api/ and tells widgets what
 * changed through Lumino signals. Widgets never talk to the server themselves.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

/** What a core Result looks like on the wire: its fields plus the table the CLI prints. */
export interface IView {
  headers: string[];
  rows: string[][];
  summary: string;
  highlight: number[];
}

export interface IResult {
  view?: IView;
  /** A paged list: how many items match, and the route of the next page (null: last). */
  total?: number;
  next?: string | null;
  next_offset?: number | null;
  [key: string]: unknown;
}

export interface IRunProgress {
  id: string;
  status: string;
  epoch: number;
  epochs: number | null;
  map: number | null;
}

/** `runs/compare`: one entry per run, its per-epoch series, the parameters that differ. */
export interface IRunsCompare extends IResult {
  metric: string;
  runs: { id: string; best_epoch: number | null; best: number | null }[];
  series: { [run: string]: { [metric: string]: (number | null)[] } };
  params: { [param: string]: { [run: string]: unknown } };
}

interface IProgressAnswer {
  cursor: string;
  runs: IRunProgress[];
  sections: Section[];
}

export type Section =
  | 'status'
  | 'datasets'
  | 'runs'
  | 'registry'
  | 'audit'
  | 'whoami';

export const SECTIONS: Section[] = [
  'whoami',
  'status',
  'datasets',
  'runs',
  'registry',
  'audit'
];

/** An error answered by the server: {"error": {"type", "message", "hint"}}. */
export class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly hint: string | null,
    readonly status: number
  ) {
    super(message);
  }
}

export async function requestAPI<T>(
  path: string,
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'nbversion', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ApiError(
      'NetworkError',
      `cannot reach the Jupyter server: ${error}`,
      'check that the server is still running',
      0
    );
  }
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { error: { type: 'BadResponse', message: text.slice(0, 200) } };
  }
  if (!response.ok) {
    const error = data.error || {};
    throw new ApiError(
      error.type || 'HTTPError',
      error.message || response.statusText,
      error.hint || null,
      response.status
    );
  }
  return data as T;
}

// lists ask for `fields=view`: the sidebar draws the CLI's table, not the full records
const PATHS: { [key in Section]: string } = {
  whoami: 'whoami',
  status: 'status',
  datasets: 'datasets?fields=view',
  runs: 'runs?fields=view',
  registry: 'registry?fields=view',
  // the sidebar shows the latest entries; the whole log is `nbversion audit`
  audit: 'audit?limit=50&fields=view'
};

export class NbversionModel {
  /** Latest answer of each section (undefined until loaded, null when not available). */
  readonly results = new Map<Section, IResult | null>();
  /** Live progress of runs, by run id, fed by the long poll. */
  readonly progress = new Map<string, IRunProgress>();
  /** Sections that cannot load: that part of nbversion is not installed, or no workspace. */
  readonly unavailable = new Map<Section, string>();

  get changed(): ISignal<this, Section> {
    return this._changed;
  }

  get failed(): ISignal<this, ApiError> {
    return this._failed;
  }

  get role(): string {
    const who = this.results.get('whoami');
    return (who && (who.role as string)) || 'viewer';
  }

  async refresh(section: Section): Promise<void> {
    try {
      const result = await requestAPI<IResult>(PATHS[section]);
      if (section === 'registry' && result.next && result.view) {
        await this.pinChampions(result.view);
      }
      this.results.set(section, result);
      this.unavailable.delete(section);
    } catch (error) {
      const reason = this.sectionCannotLoad(error);
      if (reason) {
        // said once in the section, not as one notification per section and refresh
        this.results.set(section, null);
        this.unavailable.set(section, reason);
      } else {
        this.report(error);
        if (!this.results.has(section)) {
          // never loaded: say why in place of an endless "loading…"
          this.unavailable.set(section, `could not load: ${(error as Error).message}`);
        }
      }
    }
    this._changed.emit(section);
  }

  async refreshAll(): Promise<void> {
    await Promise.all(SECTIONS.map(section => this.refresh(section)));
  }

  async commit(message: string): Promise<IResult | null> {
    const result = await this.act<IResult>('commit', { message });
    await Promise.all([this.refresh('status'), this.refresh('audit')]);
    return result;
  }

  async promote(ref: string, stage = 'champion'): Promise<IResult | null> {
    const result = await this.act<IResult>('registry/promote', { ref, stage });
    await Promise.all([this.refresh('registry'), this.refresh('audit')]);
    return result;
  }

  async stopRun(id: string): Promise<IResult | null> {
    const result = await this.act<IResult>(
      `runs/${encodeURIComponent(id)}/stop`,
      {}
    );
    await this.refresh('runs');
    return result;
  }

  /** Cancel a queued run; an error answer (no such route yet, already started) is notified. */
  async cancelRun(id: string): Promise<IResult | null> {
    const result = await this.act<IResult>(
      `runs/${encodeURIComponent(id)}/cancel`,
      {}
    );
    await this.refresh('runs');
    return result;
  }

  compareRuns(ids: string[], metric = ''): Promise<IRunsCompare | null> {
    const query = `runs=${ids.map(encodeURIComponent).join(',')}`;
    const chosen = metric ? `&metric=${encodeURIComponent(metric)}` : '';
    return this.read(`runs/compare?${query}${chosen}`) as Promise<IRunsCompare | null>;
  }

  /**
   * Add the next page of a paged list to its table. Runs page back in time, so their older
   * rows go first (the table draws them newest first); registry pages follow on. A row
   * already drawn (a champion pinned from a later page) is drawn once, where its page puts it.
   */
  async more(section: Section): Promise<void> {
    const result = this.results.get(section);
    const view = result?.view;
    if (!result || !view || !result.next) {
      return;
    }
    let page: IResult;
    try {
      page = await requestAPI<IResult>(result.next);
    } catch (error) {
      this.report(error);
      return;
    }
    const key = (row: string[]) => row.join('\u0001');
    const rows = page.view?.rows || [];
    const incoming = new Set(rows.map(key));
    const hot = new Set([
      ...view.highlight.map(i => key(view.rows[i])),
      ...(page.view?.highlight || []).map(i => key(rows[i]))
    ]);
    const kept = view.rows.filter(row => !incoming.has(key(row)));
    const merged = section === 'runs' ? [...rows, ...kept] : [...kept, ...rows];
    const total = page.total ?? result.total;
    this.results.set(section, {
      ...result,
      total,
      next: page.next,
      next_offset: page.next_offset,
      view: {
        ...view,
        rows: merged,
        highlight: merged.map((row, i) => (hot.has(key(row)) ? i : -1)).filter(i => i >= 0),
        summary: `${merged.length} of ${total}`
      }
    });
    this._changed.emit(section);
  }

  /** A registry longer than a page still draws its champions: their rows join the first page. */
  private async pinChampions(view: IView): Promise<void> {
    let held: IResult;
    try {
      held = await requestAPI<IResult>('registry?stage=champion&fields=view');
    } catch {
      return; // the page itself is what matters; a failed extra is not worth a notification
    }
    const shown = new Set(view.rows.map(row => row.join('\u0001')));
    for (const row of held.view?.rows || []) {
      if (!shown.has(row.join('\u0001'))) {
        view.highlight.push(view.rows.length);
        view.rows.push(row);
      }
    }
  }

  datasetShow(name: string, rev = ''): Promise<IResult | null> {
    const query = rev ? `?rev=${encodeURIComponent(rev)}` : '';
    return this.read(`datasets/${encodeURIComponent(name)}${query}`);
  }

  datasetDiff(name: string, a: string, b: string): Promise<IResult | null> {
    const query = `?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
    return this.read(`datasets/${encodeURIComponent(name)}/diff${query}`);
  }

  verifyAudit(): Promise<IResult | null> {
    return this.read('audit/verify');
  }

  /**
   * Follow the workspace with a long poll: the server holds the request until a run
   * writes progress or a commit, tag or audit entry lands (or ~25 s pass), so the sidebar
   * stays current, whoever changed things (a kernel, the CLI), at almost no cost when idle.
   */
  async followProgress(): Promise<void> {
    if (this._following) {
      return;
    }
    this._following = true;
    // the cursor is opaque: `<server id>:<change count>`
    let cursor = '0';
    let first = true; // the first answer describes everything: already loaded
    while (!this._disposed) {
      try {
        const answer = await requestAPI<IProgressAnswer>(
          `runs/progress?cursor=${encodeURIComponent(cursor)}&wait=${first ? 0 : 25}`
        );
        cursor = answer.cursor;
        this.applyProgress(answer, first);
        first = false;
      } catch (error) {
        // server restarting or gone: back off, then try again
        await new Promise(resolve => setTimeout(resolve, 5000));
      }
    }
    this._following = false;
  }

  private applyProgress(answer: IProgressAnswer, first: boolean): void {
    answer.runs.forEach(run => this.progress.set(run.id, run));
    if (!first) {
      answer.sections.forEach(section => void this.refresh(section));
    }
    if (!answer.runs.length) {
      return;
    }
    // a run that ended changes the runs table (status, mAP); otherwise only the bars move
    if (!first && answer.runs.some(run => run.status !== 'running')) {
      void this.refresh('runs');
    } else {
      this._changed.emit('runs');
    }
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  /** Why a section cannot show anything at all: a missing module or no workspace. */
  private sectionCannotLoad(error: unknown): string | null {
    if (!(error instanceof ApiError)) {
      return null;
    }
    if (error.status === 501) {
      return `not available: ${error.message}`;
    }
    if (error.type === 'not_a_workspace') {
      return error.hint ? `${error.message}: ${error.hint}` : error.message;
    }
    return null;
  }

  private async read(path: string): Promise<IResult | null> {
    try {
      return await requestAPI<IResult>(path);
    } catch (error) {
      this.report(error);
      return null;
    }
  }

  private async act<T>(path: string, body: object): Promise<T | null> {
    try {
      return await requestAPI<T>(path, {
        method: 'POST',
        body: JSON.stringify(body)
      });
    } catch (error) {
      this.report(error);
      return null;
    }
  }

  private report(error: unknown): void {
    const apiError =
      error instanceof ApiError
        ? error
        : new ApiError('Error', String(error), null, 0);
    this._failed.emit(apiError);
  }

  private _changed = new Signal<this, Section>(this);
  private _failed = new Signal<this, ApiError>(this);
  private _following = false;
  private _disposed = false;
}
