/**
 * A Keras 2 or Keras 3 model config translated into the tfjs `modelTopology` that
 * `tf.models.modelFromJSON` builds a LayersModel from (Keras 2's JSON, snake_case keys).
 *
 * What Keras 3 changed, and what this undoes: every layer entry carries `module` and
 * `registered_name`; InputLayer has `batch_shape`; an inbound node is `{args, kwargs}` whose
 * tensors are `__keras_tensor__` objects with a `keras_history` of [layer, node, tensor] (Keras 2:
 * `[[[layer, node, tensor, kwargs], …]]`); a single model input or output is written as one
 * triple instead of a list of them; and arithmetic on tensors (`x + 3.0`, as MobileNetV3 writes
 * its hard sigmoid) is recorded as an operation node rather than a layer.
 */
import { ModelImportError } from './errors.js';
import { asArray, asIndex, asObject, asShape, asString, badValue, isObject, type Json, type JsonObject, own } from './json.js';
import { CODE_LAYERS, type Stage, TRANSLATORS } from './layers.js';
import { dtypeOf, type LayerContext, refuse } from './params.js';

/** Where a translation is, and which Keras wrote the file. @internal */
export interface TopologyContext {
  file: string;
  keras: 2 | 3;
}

type Ref = [string, number, number, JsonObject];

/** The model's top-level config, as tfjs's modelFromJSON takes it. @internal */
export function toTfjsTopology(model: unknown, ctx: TopologyContext): JsonObject {
  const site = { file: ctx.file };
  const top = asObject(site, 'the model config', model);
  const className = asString(site, 'the model config class_name', top.class_name);
  const config = asObject(site, 'the model config', top.config);
  const name = typeof config.name === 'string' ? config.name : 'model';
  const translated = translateModel(className, config, ctx, name);
  return { class_name: translated.className, config: translated.config, keras_version: 'featherstack-import', backend: 'tensorflow' };
}

function translateModel(className: string, config: JsonObject, ctx: TopologyContext, name: string): Stage {
  if (className === 'Functional' || className === 'Model') return { className: 'Model', config: functional(config, ctx) };
  if (className === 'Sequential') return { className: 'Sequential', config: sequential(config, ctx) };
  throw new ModelImportError({ file: ctx.file, layer: name, className }, `a model of class ${className} cannot be imported (Functional or Sequential)`);
}

function functional(config: JsonObject, ctx: TopologyContext): JsonObject {
  const site = { file: ctx.file };
  const layers: JsonObject[] = [];
  for (const entry of asArray(site, 'layers', config.layers)) layers.push(...layerEntries(asObject(site, 'a layer entry', entry), ctx));
  const topology = {
    name: config.name ?? null,
    trainable: config.trainable ?? true,
    layers,
    input_layers: endpoints(site, 'input_layers', config.input_layers),
    output_layers: endpoints(site, 'output_layers', config.output_layers),
  };
  shiftNestedNodes(topology);
  return topology;
}

/**
 * A nested model's node 0 in tfjs is its own construction (its inputs to its outputs); Keras
 * leaves that node out of the config, and tfjs does not skip it when it reads one back. Calls of
 * a nested model are therefore its nodes 1, 2, … in tfjs.
 */
function shiftNestedNodes(topology: { layers: JsonObject[]; output_layers: Json[] }): void {
  const nested = new Set(topology.layers.filter((l) => l.class_name === 'Model' || l.class_name === 'Sequential').map((l) => l.name));
  if (nested.size === 0) return;
  const shift = (ref: Json) => {
    if (Array.isArray(ref) && typeof ref[0] === 'string' && nested.has(ref[0]) && typeof ref[1] === 'number') ref[1] += 1;
  };
  for (const layer of topology.layers) for (const node of layer.inbound_nodes as Json[][]) node.forEach(shift);
  topology.output_layers.forEach(shift);
}

/** Keras 3 writes one endpoint as `[name, 0, 0]`, Keras 2 always as a list of them. */
function endpoints(site: { file: string }, what: string, value: Json | undefined): Json[] {
  const list = asArray(site, what, value);
  const all = typeof list[0] === 'string' ? [list] : list;
  return all.map((e) => {
    const [layer, node, tensor] = asArray(site, what, e);
    return [asString(site, what, layer), asIndex(site, what, node), asIndex(site, what, tensor)];
  });
}

/** A Sequential's layers; its InputLayer becomes the first layer's batch_input_shape, as tfjs writes it. */
function sequential(config: JsonObject, ctx: TopologyContext): JsonObject {
  const site = { file: ctx.file };
  const layers: JsonObject[] = [];
  let batchShape: Json | undefined;
  for (const raw of asArray(site, 'layers', config.layers)) {
    const entry = asObject(site, 'a layer entry', raw);
    if (entry.class_name === 'InputLayer') {
      batchShape = inputLayer(layerContext(entry, ctx)).batch_input_shape;
      continue;
    }
    for (const layer of layerEntries({ ...entry, inbound_nodes: [] }, ctx)) {
      const { inbound_nodes: _, name: __, ...rest } = layer;
      layers.push(rest);
    }
  }
  const first = layers[0]?.config;
  if (batchShape !== undefined && isObject(first)) first.batch_input_shape = batchShape;
  return { name: config.name ?? null, layers };
}

function layerContext(entry: JsonObject, ctx: TopologyContext): LayerContext {
  const config = asObject({ file: ctx.file }, 'a layer config', entry.config);
  const className = asString({ file: ctx.file }, 'a layer class_name', entry.class_name);
  const layer = typeof config.name === 'string' ? config.name : typeof entry.name === 'string' ? entry.name : '?';
  return { site: { file: ctx.file, layer, className }, config, keras: ctx.keras, inputShape: recordedInputShape(entry) };
}

/** Keras 3 records a layer's input shape in build_config and in each inbound tensor. */
function recordedInputShape(entry: JsonObject): (number | null)[] | undefined {
  const built = isObject(entry.build_config) ? entry.build_config.input_shape : undefined;
  const node = Array.isArray(entry.inbound_nodes) ? entry.inbound_nodes[0] : undefined;
  const arg = isObject(node) && Array.isArray(node.args) ? node.args[0] : undefined;
  const tensor = isObject(arg) && isObject(arg.config) ? arg.config.shape : undefined;
  const shape = Array.isArray(built) && built.every((d) => d === null || typeof d === 'number') ? built : tensor;
  return Array.isArray(shape) && shape.every((d) => d === null || typeof d === 'number') ? (shape as (number | null)[]) : undefined;
}

function inputLayer(lc: LayerContext): JsonObject {
  const c = lc.config;
  if (c.sparse === true || c.ragged === true) refuse(lc, 'sparse and ragged inputs cannot be imported');
  const shape = asShape(lc.site, 'batch_shape', c.batch_shape ?? c.batch_input_shape);
  return { batch_input_shape: shape, dtype: dtypeOf(lc, c.dtype), sparse: false, name: lc.site.layer };
}

const OPERATIONS = new Set(['Add', 'Subtract', 'Multiply', 'Divide', 'TrueDivide']);

/**
 * Is this entry a Keras 3 operation rather than a layer? `.keras` configs say so by module
 * (`keras.src.ops.numpy`); legacy `.h5` configs drop the module, but an operation's config holds
 * its name only, where every layer's also has `trainable` and `dtype`.
 * @internal
 */
export function isOperation(entry: JsonObject): boolean {
  const module = typeof entry.module === 'string' ? entry.module : undefined;
  if (module !== undefined) return module.startsWith('keras.src.ops') || module.startsWith('keras.ops');
  const config = entry.config;
  return OPERATIONS.has(String(entry.class_name)) && isObject(config) && Object.keys(config).every((k) => k === 'name');
}

/** The tfjs layer entries one Keras layer entry becomes (usually one). */
function layerEntries(entry: JsonObject, ctx: TopologyContext): JsonObject[] {
  const lc = layerContext(entry, ctx);
  const { className, layer: name } = lc.site;
  const module = typeof entry.module === 'string' ? entry.module : '';
  if (isOperation(entry)) return [operation(entry, lc)];
  const nodes = inboundNodes(entry, lc);
  if (className === 'InputLayer') return [{ class_name: 'InputLayer', name, config: inputLayer(lc), inbound_nodes: [] }];
  if (className === 'Functional' || className === 'Model' || className === 'Sequential') {
    const nested = translateModel(className, lc.config, ctx, name);
    return [{ class_name: nested.className, name, config: nested.config, inbound_nodes: nodes }];
  }
  const code = own(CODE_LAYERS, className);
  if (code !== undefined) refuse(lc, code);
  const custom = module !== '' && module !== 'keras.layers' && !module.startsWith('keras.src.layers');
  if (custom || (typeof entry.registered_name === 'string' && entry.registered_name !== className)) {
    refuse(lc, `${className} is a custom layer (registered as ${JSON.stringify(entry.registered_name ?? module)}), which cannot be imported`);
  }
  const translate = own(TRANSLATORS, className);
  if (translate === undefined) refuse(lc, `tfjs has no layer class ${className}`);
  const base = { name, trainable: lc.config.trainable ?? true, dtype: dtypeOf(lc) };
  const stages = [translate(lc)].flat();
  return stages.map((stage, i) => {
    const last = i === stages.length - 1;
    const stageName = last ? name : `${name}/${stage.suffix ?? i}`;
    const inbound = i === 0 ? nodes : nodes.map((_, n) => [[`${name}/${stages[i - 1]!.suffix ?? i - 1}`, n, 0, {}]]);
    return { class_name: stage.className, name: stageName, config: { ...base, ...stage.config, name: stageName }, inbound_nodes: inbound };
  });
}

/** Keras 2's `[[[layer, node, tensor, kwargs]]]`, from either Keras's inbound nodes. */
function inboundNodes(entry: JsonObject, lc: LayerContext): Ref[][] {
  return asArray(lc.site, 'inbound_nodes', entry.inbound_nodes ?? []).map((node) => {
    if (Array.isArray(node)) {
      return node.map((ref) => {
        const [layer, n, t, kwargs] = asArray(lc.site, 'an inbound node', ref);
        return [
          asString(lc.site, 'an inbound layer', layer),
          asIndex(lc.site, 'a node index', n),
          asIndex(lc.site, 'a tensor index', t),
          callKwargs(lc, kwargs),
        ];
      });
    }
    const { args, kwargs } = asObject(lc.site, 'an inbound node', node);
    const refs: Ref[] = [];
    const call = callKwargs(lc, kwargs);
    for (const arg of asArray(lc.site, 'inbound node args', args ?? []).flat(4)) {
      const ref = kerasTensor(lc, arg);
      if (ref === undefined) refuse(lc, `is called with a constant argument ${JSON.stringify(arg)}, which tfjs layers do not take`);
      refs.push([...ref, call]);
    }
    return refs;
  });
}

/** [layer, node, tensor] of a Keras 3 `__keras_tensor__`, or undefined for another value. */
function kerasTensor(lc: LayerContext, value: Json): [string, number, number] | undefined {
  if (!isObject(value) || value.class_name !== '__keras_tensor__') return undefined;
  const history = asArray(lc.site, 'keras_history', asObject(lc.site, 'a keras tensor', value.config).keras_history);
  return [asString(lc.site, 'keras_history', history[0]), asIndex(lc.site, 'keras_history', history[1]), asIndex(lc.site, 'keras_history', history[2])];
}

/**
 * A layer call's keyword arguments: `training` is kept (Keras's meaning: a Dropout called with
 * training=False never drops), null ones (`mask: None`) are dropped, anything else is refused.
 */
function callKwargs(lc: LayerContext, value: Json | undefined): JsonObject {
  if (value === undefined || value === null) return {};
  const kwargs = asObject(lc.site, 'call kwargs', value);
  const out: JsonObject = {};
  for (const [key, v] of Object.entries(kwargs)) {
    if (v === null) continue;
    if (key === 'training' && typeof v === 'boolean') out.training = v;
    else refuse(lc, `is called with ${key}=${JSON.stringify(v).slice(0, 60)}, which cannot be imported`);
  }
  return out;
}

/**
 * A Keras 3 operation node (`x + 3.0`, `x * (1 / 6)`, `a * b`): a constant operand becomes a tfjs
 * Rescaling (x * scale + offset: exact for +, - and *, within
 * an ulp for / c, which becomes * (1 / c)), two tensors become the merge layer.
 */
function operation(entry: JsonObject, lc: LayerContext): JsonObject {
  const { className, layer: name } = lc.site;
  const node = asArray(lc.site, 'inbound_nodes', entry.inbound_nodes);
  if (node.length !== 1) refuse(lc, 'an operation used more than once cannot be imported');
  const { args, kwargs } = asObject(lc.site, 'an inbound node', node[0]);
  if (isObject(kwargs) && Object.keys(kwargs).length > 0) refuse(lc, `operation ${className} with keyword arguments cannot be imported`);
  const operands = asArray(lc.site, 'operation args', args);
  const refs = operands.map((a) => kerasTensor(lc, a));
  const constant = operands.find((_, i) => refs[i] === undefined);
  const tensors = refs.filter((r) => r !== undefined).map((r) => [...r, {}]);
  const base = { name, trainable: true, dtype: 'float32' };
  const merge: Record<string, string> = { Add: 'Add', Subtract: 'Subtract', Multiply: 'Multiply' };
  if (operands.length === 2 && tensors.length === 2 && own(merge, className) !== undefined) {
    return { class_name: merge[className]!, name, config: base, inbound_nodes: [tensors] };
  }
  if (operands.length !== 2 || tensors.length !== 1 || typeof constant !== 'number' || !Number.isFinite(constant)) {
    return refuse(lc, `Keras operation ${className} on ${JSON.stringify(operands).slice(0, 80)} has no tfjs layer`);
  }
  const tensorFirst = refs[0] !== undefined;
  const affine: Record<string, [number, number] | undefined> = {
    Add: [1, constant],
    Multiply: [constant, 0],
    Subtract: tensorFirst ? [1, -constant] : [-1, constant],
    Divide: tensorFirst ? [1 / constant, 0] : undefined,
    TrueDivide: tensorFirst ? [1 / constant, 0] : undefined,
  };
  const scaleOffset = own(affine, className);
  if (scaleOffset === undefined) throw badValue(lc.site, `operation ${className}`, 'x + c, x - c, c - x, x * c or x / c', operands);
  return { class_name: 'Rescaling', name, config: { ...base, scale: scaleOffset[0], offset: scaleOffset[1] }, inbound_nodes: [tensors] };
}
