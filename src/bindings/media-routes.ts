import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { MediaCatalogue } from '../stores/media-catalogue';
import { ErrorSchema } from '../http/schemas';

/**
 * The operator's media catalogue, as tenants see it: the ids they may name as a binding's
 * announcement, with what each plays. Tenants read it; only the operator (CLI) writes it.
 */
const MediaItem = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('file'), Type.Literal('tone')]),
  description: Type.String(),
});

export function registerMediaRoutes(v1: FastifyInstance, catalogue: Pick<MediaCatalogue, 'list'>): void {
  v1.get(
    '/media',
    {
      schema: {
        summary: 'Prompts and announcements a binding may name (by id); the operator manages them',
        security: [{ bearer: [] }],
        response: { 200: Type.Object({ items: Type.Array(MediaItem) }), 401: ErrorSchema, 429: ErrorSchema },
      },
    },
    async () => ({ items: (await catalogue.list()).map(({ id, kind, description }) => ({ id, kind, description })) }),
  );
}
