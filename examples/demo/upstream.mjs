// DEMO ONLY: a tiny stand-in for an AI provider, so the quickstart runs without an API key.
// It speaks just enough of OpenAI's /v1/chat/completions, Anthropic's /v1/messages and
// Gemini's /v1beta/models/{model}:generateContent (JSON and streamed, each in its own wire
// format) to show metering and translation; Gemini's OpenAI-compatible path
// /v1beta/openai/chat/completions answers as OpenAI. Its answers are canned and its token
// counts are rough. Never put it in front of real users.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8090);
const host = process.env.HOST ?? '127.0.0.1';

const countTokens = (text) => Math.max(1, Math.ceil(text.length / 4));
const textOf = (content) =>
  typeof content === 'string'
    ? content
    : Array.isArray(content)
      ? content.map((p) => p.text ?? '').join(' ')
      : '';

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * What a real provider refuses with 400 before generating anything: the demo answers bad
 * input the way the provider would, instead of throwing on it.
 */
function chatProblem(body, { systemField }) {
  if (typeof body.model !== 'string' || body.model === '') return 'model: a model id (string) is required';
  if (!Array.isArray(body.messages)) return 'messages: an array of messages is required';
  for (const [i, m] of body.messages.entries()) {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) return `messages[${i}]: must be an object`;
    if (typeof m.role !== 'string') return `messages[${i}].role: a string is required`;
    const content = m.content;
    const parts = Array.isArray(content) && content.every((p) => p !== null && typeof p === 'object');
    if (typeof content !== 'string' && !parts && !(content === null && m.role === 'assistant'))
      return `messages[${i}].content: a string or an array of content parts is required`;
  }
  if (
    systemField &&
    body.system !== undefined &&
    typeof body.system !== 'string' &&
    !Array.isArray(body.system)
  )
    return 'system: a string or an array of text blocks is required';
  return undefined;
}

function openaiChat(body, res) {
  const problem = chatProblem(body, { systemField: false });
  if (problem)
    return send(res, 400, {
      error: { message: problem, type: 'invalid_request_error', param: null, code: null },
    });
  const prompt = (body.messages ?? []).map((m) => textOf(m.content)).join('\n');
  const reply = `Hello from the demo upstream. You are ${body.model}, and the last message was: ${textOf(body.messages?.at(-1)?.content).slice(0, 80)}`;
  const usage = { prompt_tokens: countTokens(prompt), completion_tokens: countTokens(reply) };
  usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
  const base = {
    id: `chatcmpl-demo-${Date.now()}`,
    created: Math.floor(Date.now() / 1000),
    model: body.model,
  };
  if (!body.stream) {
    return send(res, 200, {
      ...base,
      object: 'chat.completion',
      choices: [
        { index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop', logprobs: null },
      ],
      usage,
    });
  }
  const withUsage = body.stream_options?.include_usage === true;
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta, finish) =>
    `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }], ...(withUsage ? { usage: null } : {}) })}\n\n`;
  const words = reply.split(/(?<= )/);
  res.write(chunk({ role: 'assistant', content: '' }, null));
  let i = 0;
  const timer = setInterval(() => {
    if (i < words.length) return void res.write(chunk({ content: words[i++] }, null));
    clearInterval(timer);
    res.write(chunk({}, 'stop'));
    if (withUsage)
      res.write(
        `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`,
      );
    res.end('data: [DONE]\n\n');
  }, 20);
  res.on('close', () => clearInterval(timer));
}

function anthropicMessages(body, res) {
  const problem = chatProblem(body, { systemField: true });
  if (problem)
    return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: problem } });
  const prompt = [textOf(body.system), ...(body.messages ?? []).map((m) => textOf(m.content))].join('\n');
  const reply = `Hello from the demo upstream, speaking as ${body.model}.`;
  const usage = { input_tokens: countTokens(prompt), output_tokens: countTokens(reply) };
  const message = { id: `msg_demo_${Date.now()}`, type: 'message', role: 'assistant', model: body.model };
  if (!body.stream) {
    return send(res, 200, {
      ...message,
      content: [{ type: 'text', text: reply }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage,
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  const event = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  event('message_start', {
    message: { ...message, content: [], usage: { input_tokens: usage.input_tokens, output_tokens: 1 } },
  });
  event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
  event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: reply } });
  event('content_block_stop', { index: 0 });
  event('message_delta', {
    delta: { stop_reason: 'end_turn', stop_sequence: null },
    usage: { output_tokens: usage.output_tokens },
  });
  event('message_stop', {});
  res.end();
}

/** What Gemini refuses with 400 (its own error shape: code, message, status). */
function geminiProblem(body) {
  if (!Array.isArray(body.contents)) return 'contents: an array of contents is required';
  for (const [i, c] of body.contents.entries()) {
    if (c === null || typeof c !== 'object' || !Array.isArray(c.parts))
      return `contents[${i}].parts: an array of parts is required`;
  }
  return undefined;
}

function geminiGenerate(model, stream, body, res) {
  const problem = geminiProblem(body);
  if (problem) return send(res, 400, { error: { code: 400, message: problem, status: 'INVALID_ARGUMENT' } });
  const textOfParts = (parts) => (parts ?? []).map((p) => p?.text ?? '').join(' ');
  const prompt = [
    textOfParts(body.systemInstruction?.parts),
    ...body.contents.map((c) => textOfParts(c.parts)),
  ].join('\n');
  const reply = `Hello from the demo upstream, speaking Gemini as ${model}.`;
  const usageMetadata = (output) => ({
    promptTokenCount: countTokens(prompt),
    candidatesTokenCount: output,
    totalTokenCount: countTokens(prompt) + output,
  });
  const response = (text, finish, output) => ({
    candidates: [
      {
        content: { role: 'model', parts: [{ text }] },
        index: 0,
        ...(finish ? { finishReason: finish } : {}),
      },
    ],
    usageMetadata: usageMetadata(output),
    modelVersion: model,
    responseId: `demo-${Date.now()}`,
  });
  if (!stream) return send(res, 200, response(reply, 'STOP', countTokens(reply)));
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  // Gemini's SSE: data-only events, each a whole response with running usage totals.
  const words = reply.split(/(?<= )/);
  let sent = '';
  for (const [i, word] of words.entries()) {
    sent += word;
    const last = i === words.length - 1;
    res.write(
      `data: ${JSON.stringify(response(word, last ? 'STOP' : undefined, countTokens(sent)))}\r\n\r\n`,
    );
  }
  res.end();
}

const GEMINI_PATH = /^\/v1beta\/models\/([^/:?]+):(generateContent|streamGenerateContent)(\?.*)?$/;

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body = {};
    try {
      body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      return send(res, 400, {
        error: { message: 'invalid JSON', type: 'invalid_request_error', code: null },
      });
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body))
      return send(res, 400, {
        error: { message: 'the body must be a JSON object', type: 'invalid_request_error', code: null },
      });
    try {
      if (req.method === 'POST' && req.url?.startsWith('/v1/chat/completions')) return openaiChat(body, res);
      if (req.method === 'POST' && req.url?.startsWith('/v1/messages')) return anthropicMessages(body, res);
      if (req.method === 'POST' && req.url?.startsWith('/v1beta/openai/chat/completions'))
        return openaiChat(body, res);
      const gemini = req.method === 'POST' ? GEMINI_PATH.exec(req.url ?? '') : null;
      if (gemini)
        return geminiGenerate(
          decodeURIComponent(gemini[1]),
          gemini[2] === 'streamGenerateContent',
          body,
          res,
        );
    } catch (error) {
      // A bug here must cost one request, never the demo.
      process.stderr.write(`demo upstream: ${error.stack}\n`);
      if (!res.headersSent)
        return send(res, 500, { error: { message: 'demo upstream error', type: 'api_error' } });
      return res.destroy();
    }
    if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
      return send(res, 200, {
        object: 'list',
        data: [{ id: 'demo-model', object: 'model', owned_by: 'demo' }],
      });
    }
    send(res, 404, {
      error: {
        message: `the demo upstream has no ${req.method} ${req.url}`,
        type: 'invalid_request_error',
        code: null,
      },
    });
  });
});

server.listen(port, host, () =>
  process.stdout.write(`demo upstream (not a real AI provider) on http://${host}:${server.address().port}\n`),
);
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
