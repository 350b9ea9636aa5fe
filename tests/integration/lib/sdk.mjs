// OpenAI SDK helpers shared by the integration tests.

import OpenAI from 'openai';

/** An SDK client with no retries and a short timeout (tests must stay bounded). */
export function client(baseURL, apiKey, { headers = {}, timeout = 10000 } = {}) {
  return new OpenAI({
    baseURL,
    apiKey,
    maxRetries: 0,
    timeout,
    defaultHeaders: headers,
  });
}

/** Collects a chat stream: { content, events, contentEvents, times (ms per content event) }. */
export async function collectStream(stream) {
  let content = '';
  let events = 0;
  let contentEvents = 0;
  const times = [];
  for await (const chunk of stream) {
    events++;
    const d = chunk.choices?.[0]?.delta?.content;
    if (d) {
      content += d;
      contentEvents++;
      times.push(Date.now());
    }
  }
  return { content, events, contentEvents, times };
}

export { OpenAI };
