/**
 * Upstream: records from HTTP, files and raw topics → records.normalized (Avro) or
 * records.rejected (JSON envelope), all through one pipeline: parse → validate → normalize → produce.
 *
 *   const upstream = await startUpstream(config, { logger });          // HTTP ingest API
 *   const { apiKey } = await upstream.sources.add('shop');              // a source and its key
 *   await loadFile('orders.csv', { source, pipeline, logger });         // bulk files
 *   await new RawTopicNormalizer({ kafka, pipeline, sources, logger }).start();
 */
export { normalizeRecord, stableRecordId, type Reason, type NormalizeResult } from './normalize.ts';
export { resolveMapping, parseMapping, parsePairs, DEFAULT_MAPPING, type SourceMapping } from './mapping.ts';
export { RecordPipeline, type BatchResult, type SourceRef } from './pipeline.ts';
export { SourceStore, UnknownSourceError, SourceExistsError } from './sources.ts';
export { IngestServer } from './ingest-server.ts';
export { loadFile, detectFormat, type LoadProgress, type FileFormat } from './file-loader.ts';
export { RawTopicNormalizer, RAW_NORMALIZER_GROUP } from './raw-topic-normalizer.ts';
export { startUpstream, openUpstream, UPSTREAM_KEY_PREFIX, UPSTREAM_DEPENDENCIES, type UpstreamService, type UpstreamCore } from './service.ts';
export type { RejectedEnvelope } from './rejected.ts';
