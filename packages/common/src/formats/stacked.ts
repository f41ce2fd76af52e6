/**
 * The stacked model's directory: `model.json` + `weights.bin` (tfjs layers format: base up to its
 * feature layer, then the head) and STACKED_METADATA_FILE, what predict and evaluate need to feed
 * it images exactly as in training.
 */
import { COLOR_MODES, type ColorMode, INTERPOLATIONS, type Interpolation } from './image.js';

export const STACKED_METADATA_FILE = 'featherstack.json';
export const STACKED_FORMAT = 1;

export interface StackedMetadata {
  format: typeof STACKED_FORMAT;
  /** Class names by output index. */
  classNames: string[];
  /** [height, width, channels]. */
  inputShape: [number, number, number];
  colorMode: ColorMode;
  interpolation: Interpolation;
  /** The rescale applied to 0–255 pixels before the model (1 for none). */
  rescale: number;
  featureLayer: string;
  /** Global pooling after the feature layer (absent: 'none', models written before it existed). */
  pooling?: 'avg' | 'max' | 'none';
  /** Keras's preprocess_input mode applied before the rescale (absent: 'none'). */
  preprocess?: 'none' | 'tf' | 'caffe' | 'torch';
  /** The imported base file the model was built on (informational). */
  base?: string;
}

/** The metadata, or what is wrong with it. */
export function parseStackedMetadata(json: unknown): StackedMetadata | string {
  if (typeof json !== 'object' || json === null) return 'is not a JSON object';
  const m = json as Record<string, unknown>;
  if (m.format !== STACKED_FORMAT) return `is not featherstack stacked-model metadata (format ${STACKED_FORMAT})`;
  if (!Array.isArray(m.classNames) || m.classNames.length === 0 || m.classNames.some((c) => typeof c !== 'string')) return 'has no list of class names';
  const shape = m.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((v) => !Number.isInteger(v) || v < 1)) return 'has no inputShape [height, width, channels]';
  if (!COLOR_MODES.includes(m.colorMode as ColorMode)) return `has colorMode ${JSON.stringify(m.colorMode)}, not one of ${COLOR_MODES.join(', ')}`;
  if (!INTERPOLATIONS.includes(m.interpolation as Interpolation))
    return `has interpolation ${JSON.stringify(m.interpolation)}, not one of ${INTERPOLATIONS.join(', ')}`;
  if (typeof m.rescale !== 'number' || !Number.isFinite(m.rescale)) return 'has no numeric rescale';
  if (typeof m.featureLayer !== 'string') return 'has no featureLayer';
  if (m.pooling !== undefined && !['avg', 'max', 'none'].includes(m.pooling as string)) return `has pooling ${JSON.stringify(m.pooling)}, not avg, max or none`;
  if (m.preprocess !== undefined && !['none', 'tf', 'caffe', 'torch'].includes(m.preprocess as string))
    return `has preprocess ${JSON.stringify(m.preprocess)}, not none, tf, caffe or torch`;
  return m as unknown as StackedMetadata;
}
