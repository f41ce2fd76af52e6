/**
 * The importer's refusal: a model file that is readable but holds something featherstack cannot load
 * as it was trained (a Lambda layer, a custom class, a weight of the wrong shape, …).
 *
 * Files that are missing, truncated or not the format their name says are refused with
 * `ModelFileError` (from @featherstack/tensorflow) instead: that is a damaged file, not a model
 * featherstack does not support.
 */

/** Where in a model file a refusal points: the file always, the layer and its class when known. */
export interface ImportSite {
  file: string;
  layer?: string;
  className?: string;
}

/**
 * A model that cannot be imported; the message names the layer, its class and the file.
 *
 * @example
 * try { await loadModelFile(tf, 'lambda.keras'); }
 * catch (e) { if ((e as Error).name === 'ModelImportError') console.error((e as ModelImportError).layer); }
 */
export class ModelImportError extends Error {
  override readonly name: string = 'ModelImportError';
  readonly code: string = 'FEATHERSTACK_MODEL_IMPORT';
  readonly file: string;
  readonly layer: string | undefined;
  readonly className: string | undefined;

  constructor(site: ImportSite, reason: string) {
    super(`${describeSite(site)}: ${reason}`);
    this.file = site.file;
    this.layer = site.layer;
    this.className = site.className;
  }
}

/**
 * A model that cannot be written as a Keras file (a layer Keras does not have); the message names
 * the layer, its class and the file.
 */
export class ModelExportError extends ModelImportError {
  override readonly name = 'ModelExportError';
  override readonly code = 'FEATHERSTACK_MODEL_EXPORT';
}

/** "layer 'conv1' (Conv2D) in /models/x.keras", or "/models/x.keras" without a layer. @internal */
export function describeSite(site: ImportSite): string {
  if (site.layer === undefined) return site.file;
  const cls = site.className === undefined ? '' : ` (${site.className})`;
  return `layer '${site.layer}'${cls} in ${site.file}`;
}
