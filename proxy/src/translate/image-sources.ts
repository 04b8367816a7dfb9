/**
 * Images between OpenAI's `image_url` (one URL string, possibly a `data:` URL) and
 * Anthropic's `image` block, whose `source` is either base64 data with a media type or a URL.
 */
import { record, text } from '../dialects/json-value.js';
import { TranslationError } from './translator.js';

/** `data:<media type>;base64,<data>`; parameters before `;base64` (charset) are allowed. */
const DATA_URL = /^data:([^;,]+)(?:;[^;,=]+=[^;,]*)*;base64,(.*)$/s;

/** The image media types Anthropic's base64 source accepts. */
const ANTHROPIC_IMAGE_TYPES = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

/** An Anthropic image block for an OpenAI image URL. `where` names the part in errors. */
export function anthropicImageFromUrl(url: unknown, where: string): Record<string, unknown> {
  if (typeof url !== 'string' || url === '') throw new TranslationError(`${where}.image_url.url is missing`);
  const data = DATA_URL.exec(url);
  if (data) {
    const given = (data[1] as string).toLowerCase();
    // "image/jpg" is common in the wild and means JPEG; Anthropic accepts only the registered name.
    const mediaType = given === 'image/jpg' ? 'image/jpeg' : given;
    if (!ANTHROPIC_IMAGE_TYPES.has(mediaType)) {
      throw new TranslationError(
        `${where}.image_url.url has media type ${given}; an Anthropic upstream takes ${[...ANTHROPIC_IMAGE_TYPES].join(', ')}`,
      );
    }
    return { type: 'image', source: { type: 'base64', media_type: mediaType, data: data[2] } };
  }
  if (/^https?:\/\//i.test(url)) return { type: 'image', source: { type: 'url', url } };
  throw new TranslationError(
    `${where}.image_url.url must be an http(s) URL or a base64 data: URL for an Anthropic upstream`,
  );
}

/** The OpenAI image URL for an Anthropic image block's `source`. `where` names the block in errors. */
export function openaiUrlFromImage(source: unknown, where: string): string {
  const s = record(source);
  if (s?.type === 'base64') {
    const mediaType = text(s.media_type);
    const data = text(s.data);
    if (mediaType && data) return `data:${mediaType};base64,${data}`;
  }
  if (s?.type === 'url') {
    const url = text(s.url);
    if (url) return url;
  }
  throw new TranslationError(
    `${where}.source of type ${JSON.stringify(s?.type ?? null)} cannot be translated for an OpenAI upstream (only base64 and url)`,
  );
}

/**
 * An Anthropic PDF document block for an OpenAI `file` part carrying inline data. Uploaded
 * files (`file_id`) live in OpenAI's storage, which an Anthropic upstream cannot read.
 */
export function anthropicDocumentFromFile(file: unknown, where: string): Record<string, unknown> {
  const data = DATA_URL.exec(text(record(file)?.file_data) ?? '');
  if (!data || (data[1] as string).toLowerCase() !== 'application/pdf') {
    throw new TranslationError(
      `${where}.file must carry a base64 PDF in file_data for an Anthropic upstream (file_id cannot be read there)`,
    );
  }
  return { type: 'document', source: { type: 'base64', media_type: 'application/pdf', data: data[2] } };
}
