/**
 * An OpenAI chat-completions client served by an Anthropic Messages upstream: the request
 * goes out as POST /v1/messages, the answer (JSON, stream or error) comes back as OpenAI's
 * SDK expects it. Fields OpenAI has and Anthropic lacks are refused by name when they would
 * change the answer (n > 1, logprobs, a JSON response format, penalties, audio), and dropped
 * when they would not (see IGNORED).
 */
import type { JsonBody, StreamEvent } from '../dialects/dialect.js';
import { TranslationError, type StreamTranslator, type Translator } from './translator.js';

type Json = Record<string, unknown>;

/** OpenAI fields with no effect on what Anthropic generates, dropped on the way. */
const IGNORED = new Set(['model', 'stream_options', 'store', 'metadata', 'service_tier', 'seed', 'user']);
/** OpenAI fields this translation maps. */
const MAPPED = new Set([
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'stream',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
]);

/** Fields that are harmless at their neutral value and refused at any other. */
const NEUTRAL: Readonly<Record<string, (value: unknown) => boolean>> = {
  n: (v) => v === 1,
  logprobs: (v) => v === false,
  presence_penalty: (v) => v === 0,
  frequency_penalty: (v) => v === 0,
  response_format: (v) => (v as Json | null)?.type === 'text',
};

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function refuse(what: string): never {
  throw new TranslationError(
    `The "${what}" field has no equivalent in the Anthropic API that serves this model; remove it or ask for another model.`,
  );
}

/** An OpenAI content part (or string) as Anthropic content blocks. */
function contentBlocks(content: unknown, where: string): Json[] {
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (content === null || content === undefined) return [];
  if (!Array.isArray(content)) refuse(`${where}.content`);
  return content.map((part: unknown, i): Json => {
    if (!isObject(part)) refuse(`${where}.content[${i}]`);
    if (part.type === 'text' && typeof part.text === 'string') return { type: 'text', text: part.text };
    if (part.type === 'image_url' && isObject(part.image_url) && typeof part.image_url.url === 'string') {
      const url = part.image_url.url;
      const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
      if (data) return { type: 'image', source: { type: 'base64', media_type: data[1], data: data[2] } };
      if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
    }
    return refuse(`${where}.content[${i}].type=${String(part.type).slice(0, 40)}`);
  });
}

function textOf(content: unknown, where: string): string {
  return contentBlocks(content, where)
    .map((block) => (block.type === 'text' ? String(block.text) : refuse(`${where}.content (an image)`)))
    .join('\n');
}

/** Appends a turn, merging it into the previous one of the same role (Anthropic alternates). */
function push(messages: { role: string; content: Json[] }[], role: string, content: Json[]): void {
  const last = messages.at(-1);
  if (last && last.role === role) last.content.push(...content);
  else messages.push({ role, content });
}

function toolUse(call: unknown, where: string): Json {
  if (!isObject(call) || !isObject(call.function) || typeof call.function.name !== 'string') refuse(where);
  let input: unknown = {};
  const args = call.function.arguments;
  if (typeof args === 'string' && args.trim() !== '') {
    try {
      input = JSON.parse(args);
    } catch {
      throw new TranslationError(`${where}.function.arguments is not valid JSON.`);
    }
  }
  return { type: 'tool_use', id: String(call.id ?? ''), name: call.function.name, input };
}

function translateMessages(messages: unknown): {
  system: string[];
  turns: { role: string; content: Json[] }[];
} {
  if (!Array.isArray(messages)) refuse('messages');
  const system: string[] = [];
  const turns: { role: string; content: Json[] }[] = [];
  messages.forEach((message: unknown, i) => {
    const where = `messages[${i}]`;
    if (!isObject(message)) refuse(where);
    switch (message.role) {
      case 'system':
      case 'developer':
        system.push(textOf(message.content, where));
        return;
      case 'user':
        push(turns, 'user', contentBlocks(message.content, where));
        return;
      case 'assistant': {
        const blocks = contentBlocks(message.content, where);
        const calls = message.tool_calls;
        if (Array.isArray(calls))
          calls.forEach((c, k) => blocks.push(toolUse(c, `${where}.tool_calls[${k}]`)));
        push(turns, 'assistant', blocks);
        return;
      }
      case 'tool':
        push(turns, 'user', [
          {
            type: 'tool_result',
            tool_use_id: String(message.tool_call_id ?? ''),
            content: textOf(message.content, where),
          },
        ]);
        return;
      default:
        refuse(`${where}.role=${String(message.role).slice(0, 40)}`);
    }
  });
  return { system, turns };
}

function translateTools(tools: unknown): Json[] {
  if (!Array.isArray(tools)) refuse('tools');
  return tools.map((tool: unknown, i) => {
    if (!isObject(tool) || tool.type !== 'function' || !isObject(tool.function)) refuse(`tools[${i}]`);
    const fn = tool.function;
    return {
      name: fn.name,
      ...(typeof fn.description === 'string' ? { description: fn.description } : {}),
      input_schema: isObject(fn.parameters) ? fn.parameters : { type: 'object', properties: {} },
    };
  });
}

function translateToolChoice(choice: unknown, parallel: unknown): Json | undefined {
  const single = parallel === false ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return parallel === false ? { type: 'auto', ...single } : undefined;
  if (choice === 'auto') return { type: 'auto', ...single };
  if (choice === 'none') return { type: 'none' };
  if (choice === 'required') return { type: 'any', ...single };
  if (isObject(choice) && isObject(choice.function) && typeof choice.function.name === 'string')
    return { type: 'tool', name: choice.function.name, ...single };
  return refuse('tool_choice');
}

function anthropicRequest(body: JsonBody, model: string): JsonBody {
  for (const [key, value] of Object.entries(body)) {
    if (MAPPED.has(key) || IGNORED.has(key) || value === null || value === undefined) continue;
    const neutral = NEUTRAL[key];
    if (neutral?.(value)) continue;
    refuse(key);
  }
  const { system, turns } = translateMessages(body.messages);
  const out: JsonBody = {
    model,
    max_tokens: body.max_completion_tokens ?? body.max_tokens ?? 4096,
    messages: turns,
  };
  if (system.length > 0) out.system = system.join('\n\n');
  if (body.temperature !== undefined && body.temperature !== null) out.temperature = body.temperature;
  if (body.top_p !== undefined && body.top_p !== null) out.top_p = body.top_p;
  if (typeof body.stop === 'string') out.stop_sequences = [body.stop];
  else if (Array.isArray(body.stop)) out.stop_sequences = body.stop;
  if (body.stream === true) out.stream = true;
  if (body.tools !== undefined && body.tools !== null) out.tools = translateTools(body.tools);
  const choice = translateToolChoice(body.tool_choice ?? undefined, body.parallel_tool_calls);
  if (choice && out.tools) out.tool_choice = choice;
  if (typeof body.user === 'string') out.metadata = { user_id: body.user };
  return out;
}

const FINISH: Readonly<Record<string, string>> = {
  end_turn: 'stop',
  stop_sequence: 'stop',
  pause_turn: 'stop',
  max_tokens: 'length',
  model_context_window_exceeded: 'length',
  tool_use: 'tool_calls',
  refusal: 'content_filter',
};

const n = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

/** Anthropic usage as OpenAI's: prompt_tokens includes the cache reads and writes. */
function openAiUsage(usage: Json): Json {
  const cached = n(usage.cache_read_input_tokens);
  const prompt = n(usage.input_tokens) + cached + n(usage.cache_creation_input_tokens);
  const completion = n(usage.output_tokens);
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: cached },
  };
}

const ERROR_TYPES: Readonly<Record<string, string>> = {
  invalid_request_error: 'invalid_request_error',
  authentication_error: 'authentication_error',
  permission_error: 'permission_error',
  not_found_error: 'not_found_error',
  request_too_large: 'invalid_request_error',
  rate_limit_error: 'rate_limit_error',
  overloaded_error: 'server_error',
  api_error: 'server_error',
};

function openAiError(error: unknown, fallback: string): Json {
  const e = isObject(error) && isObject(error.error) ? error.error : undefined;
  const type = typeof e?.type === 'string' ? e.type : 'api_error';
  return {
    error: {
      message: typeof e?.message === 'string' ? e.message : fallback,
      type: ERROR_TYPES[type] ?? 'server_error',
      param: null,
      code: type,
    },
  };
}

function createdNow(): number {
  return Math.floor(Date.now() / 1000);
}

/** The Anthropic event stream as OpenAI chunks. */
class AnthropicToOpenAiStream implements StreamTranslator {
  private id = 'chatcmpl-lanekeeper';
  private model: string;
  private readonly created = createdNow();
  private usage: Json = {};
  private finish: string | null = null;
  /** Anthropic content block index -> OpenAI tool call index. */
  private readonly tools = new Map<number, number>();
  private ended = false;

  constructor(
    model: string,
    private readonly includeUsage: boolean,
  ) {
    this.model = model;
  }

  private chunk(delta: Json, finish: string | null = null): string {
    return `data: ${JSON.stringify({
      id: this.id,
      object: 'chat.completion.chunk',
      created: this.created,
      model: this.model,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
    })}\n\n`;
  }

  push(event: StreamEvent): string {
    let data: Json;
    try {
      const parsed: unknown = JSON.parse(event.data);
      if (!isObject(parsed)) return '';
      data = parsed;
    } catch {
      return '';
    }
    switch (data.type) {
      case 'message_start': {
        const message = isObject(data.message) ? data.message : {};
        if (typeof message.id === 'string') this.id = message.id;
        if (typeof message.model === 'string') this.model = message.model;
        if (isObject(message.usage)) this.usage = { ...message.usage };
        return this.chunk({ role: 'assistant', content: '' });
      }
      case 'content_block_start': {
        const block = isObject(data.content_block) ? data.content_block : {};
        if (block.type !== 'tool_use') return '';
        const index = this.tools.size;
        this.tools.set(n(data.index), index);
        return this.chunk({
          tool_calls: [
            { index, id: block.id, type: 'function', function: { name: block.name, arguments: '' } },
          ],
        });
      }
      case 'content_block_delta': {
        const delta = isObject(data.delta) ? data.delta : {};
        if (delta.type === 'text_delta' && typeof delta.text === 'string')
          return this.chunk({ content: delta.text });
        if (delta.type === 'input_json_delta' && typeof delta.partial_json === 'string') {
          const index = this.tools.get(n(data.index));
          if (index === undefined || delta.partial_json === '') return '';
          return this.chunk({ tool_calls: [{ index, function: { arguments: delta.partial_json } }] });
        }
        return '';
      }
      case 'message_delta': {
        const delta = isObject(data.delta) ? data.delta : {};
        if (typeof delta.stop_reason === 'string') this.finish = FINISH[delta.stop_reason] ?? 'stop';
        // Cumulative: each non-null field replaces the one before.
        if (isObject(data.usage))
          for (const [key, value] of Object.entries(data.usage)) if (value !== null) this.usage[key] = value;
        return '';
      }
      case 'message_stop':
        return this.chunk({}, this.finish ?? 'stop');
      case 'error':
        return `data: ${JSON.stringify(openAiError(data, 'The upstream failed mid-stream.'))}\n\n`;
      default:
        return '';
    }
  }

  end(): string {
    if (this.ended) return '';
    this.ended = true;
    const usage = this.includeUsage
      ? `data: ${JSON.stringify({
          id: this.id,
          object: 'chat.completion.chunk',
          created: this.created,
          model: this.model,
          choices: [],
          usage: openAiUsage(this.usage),
        })}\n\n`
      : '';
    return `${usage}data: [DONE]\n\n`;
  }
}

export const openaiToAnthropic: Translator = {
  client: 'openai',
  upstream: 'anthropic',

  request(endpoint, body, options) {
    if (endpoint !== 'chat.completions')
      throw new TranslationError(
        `The model "${options.model}" is served by an Anthropic upstream, which has no ${endpoint} endpoint; only chat completions are translated.`,
      );
    return {
      path: '/v1/messages',
      query: '',
      body: anthropicRequest(body, options.model),
      stream: body.stream === true,
    };
  },

  response(body, options) {
    const message = isObject(body) ? body : {};
    const blocks = Array.isArray(message.content) ? message.content.filter(isObject) : [];
    const text = blocks
      .filter((b) => b.type === 'text')
      .map((b) => String(b.text ?? ''))
      .join('');
    const calls = blocks
      .filter((b) => b.type === 'tool_use')
      .map((b) => ({
        id: b.id,
        type: 'function',
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      }));
    return {
      id: typeof message.id === 'string' ? message.id : 'chatcmpl-lanekeeper',
      object: 'chat.completion',
      created: createdNow(),
      model: typeof message.model === 'string' ? message.model : options.model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: text === '' && calls.length > 0 ? null : text,
            refusal: null,
            ...(calls.length > 0 ? { tool_calls: calls } : {}),
          },
          logprobs: null,
          finish_reason: FINISH[String(message.stop_reason)] ?? 'stop',
        },
      ],
      usage: openAiUsage(isObject(message.usage) ? message.usage : {}),
    };
  },

  error(status, body) {
    return openAiError(
      body,
      typeof body === 'string' && body !== '' ? body.slice(0, 500) : `The upstream answered ${status}.`,
    );
  },

  stream(options) {
    return new AnthropicToOpenAiStream(options.model, options.includeUsage);
  },
};
