/**
 * The CLI's client of the orchestrator control API. The base URL comes from the config
 * (DIAMOND_HTTP_HOST, DIAMOND_CONTROL_PORT); the token from DIAMOND_TOKEN, else from the
 * local platform file `diamond up` writes. Every failure becomes a DiamondError that says
 * what to do: no token, API not reachable, or the server's own error and hint.
 */
import type { DiamondConfig } from '../../shared/config.ts';
import { DiamondError } from '../../shared/errors.ts';
import { ApiClient } from '../../shared/http/api-client.ts';
import { localConfigPath, platformEndpoints, readLocalPlatform } from '../platform/platform-file.ts';

/** The CLI's token: DIAMOND_TOKEN, else the one in the local platform file. */
export function controlToken(config: Pick<DiamondConfig, 'control' | 'home'>): string {
  if (config.control.token) return config.control.token;
  const local = readLocalPlatform(config);
  if (local?.token) return local.token;
  throw new DiamondError('no token for the orchestrator control API', {
    code: 'DIAMOND_TOKEN_MISSING',
    hint: `set DIAMOND_TOKEN or run \`npx diamond up\` (it writes one to ${localConfigPath(config)}); create one with \`npx diamond token add --role deployer\``,
  });
}

export interface SseMessage {
  readonly event: string;
  readonly id: string | null;
  readonly data: string;
}

/** Incremental server-sent events parser: feed it text, get the complete messages. */
export class SseParser {
  #buffer = '';
  #event = '';
  #id: string | null = null;
  #data: string[] = [];

  push(text: string): SseMessage[] {
    this.#buffer += text;
    const messages: SseMessage[] = [];
    let newline: number;
    while ((newline = this.#buffer.search(/\r?\n/)) >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + (this.#buffer[newline] === '\r' ? 2 : 1));
      if (line === '') {
        if (this.#data.length > 0) messages.push({ event: this.#event || 'message', id: this.#id, data: this.#data.join('\n') });
        this.#event = '';
        this.#data = [];
        continue;
      }
      if (line.startsWith(':')) continue; // comment (keep-alive)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') this.#event = value;
      else if (field === 'data') this.#data.push(value);
      else if (field === 'id') this.#id = value;
    }
    return messages;
  }
}

const REQUEST_TIMEOUT_MS = 120_000; // a deploy validates the use case's code first

export class ControlClient extends ApiClient {
  constructor(baseUrl: string, token: string) {
    super({
      name: 'orchestrator control API', baseUrl, token,
      unreachableHint: 'run `npx diamond up` or `npx diamond serve orchestrator`',
      timeout: { ms: REQUEST_TIMEOUT_MS, code: 'DIAMOND_CONTROL_TIMEOUT', hint: 'see its log (`npx diamond serve orchestrator` prints it)' },
    });
  }

  /** Throws the no-token DiamondError before any request is made. */
  static fromConfig(config: DiamondConfig): ControlClient {
    return new ControlClient(config.control.url || platformEndpoints(config).controlUrl, controlToken(config));
  }

  /** The server-sent events of a streaming GET. */
  async *events(path: string, signal: AbortSignal): AsyncGenerator<SseMessage> {
    const parser = new SseParser();
    const decoder = new TextDecoder();
    for await (const chunk of await this.stream(path, signal)) {
      yield* parser.push(decoder.decode(chunk, { stream: true }));
    }
  }
}

/** Ends a streaming command (logs --follow, events --follow) on Ctrl-C, quietly. */
export function abortOnSigint(): AbortController {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  return controller;
}

/** Runs `work` until it ends or Ctrl-C aborted it (then it returns normally). */
export async function untilAborted(controller: AbortController, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    if (!controller.signal.aborted) throw error;
  }
}
