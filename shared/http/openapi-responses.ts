/**
 * Success answers as the OpenAPI documents state them. JSON answers are described by their
 * top-level keys only (additionalProperties stays open, so fastify's serializer passes every
 * field through untouched); streamed and text answers name their content type for the
 * success status alone, so an error on those routes is documented as the JSON error body.
 */
export function jsonAnswer(description: string, required: readonly string[] = []): Record<string, unknown> {
  return { description, type: 'object', additionalProperties: true, ...(required.length > 0 ? { required } : {}) };
}

export function textAnswer(contentType: 'text/plain' | 'text/event-stream' | 'text/html' | 'text/javascript' | 'text/css', description: string): Record<string, unknown> {
  return { description, content: { [contentType]: { schema: { type: 'string' } } } };
}
