import { Field, FixedSizeList, Float32, Int32, Schema, Utf8 } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { featureSchema, isShardFileName, readFeatureSchema, shardFileName } from '../dist/index.js';

describe('shard file names (one owner)', () => {
  it('names shards zero-padded so that they sort in shard order, and recognises only its own names', () => {
    expect(shardFileName(7)).toBe('shard-000007.arrow');
    expect(shardFileName(12, 'pixels')).toBe('pixels-000012.arrow');
    expect([shardFileName(10), shardFileName(9)].sort()).toEqual([shardFileName(9), shardFileName(10)]);
    expect(isShardFileName('shard-000007.arrow')).toBe(true);
    expect(isShardFileName('pixels-000007.arrow')).toBe(false);
    expect(isShardFileName('pixels-000007.arrow', 'pixels')).toBe(true);
    // A damaged shard moved aside, or a partial write, is not part of the set.
    expect(isShardFileName('shard-000007.arrow.damaged')).toBe(false);
    expect(isShardFileName('.shard-000007.arrow.partial')).toBe(false);
  });
});

describe('readFeatureSchema', () => {
  const meta = (entries: Record<string, string>) => new Map(Object.entries(entries));
  it('describes a feature file written to the format', () => {
    const schema = featureSchema(3, meta({ 'featherstack.class_names': '["a","b"]', 'featherstack.base_model_sha256': 'ab12' }));
    expect(readFeatureSchema(schema)).toEqual({ classNames: ['a', 'b'], sequence: null, dimension: 3, hasPaths: true, shard: null, baseModel: 'ab12' });
  });
  it('names what is wrong with columns, types and metadata', () => {
    const list = (d: number) => new FixedSizeList(d, new Field('value', new Float32(), false));
    const schema = (fields: Field[], metadata = new Map<string, string>()) => new Schema(fields, metadata);
    expect(readFeatureSchema(schema([new Field('label', new Int32())]))).toBe("has no 'features' column (columns: label)");
    expect(readFeatureSchema(schema([new Field('features', list(2)), new Field('label', new Float32())]))).toBe(
      "column 'label' must be an integer column, found Float32",
    );
    expect(readFeatureSchema(schema([new Field('features', list(2)), new Field('label', new Int32()), new Field('path', new Int32())]))).toBe(
      "column 'path' must be Utf8, found Int32",
    );
    expect(readFeatureSchema(schema([new Field('features', list(0)), new Field('label', new Int32())]))).toBe(
      'has 0-dimensional features: there is nothing to train a head on',
    );
    const fields = [new Field('path', new Utf8()), new Field('features', list(2)), new Field('label', new Int32())];
    expect(readFeatureSchema(schema(fields, meta({ 'featherstack.format': '99' })))).toMatch(/^is feature format 99, written by a newer featherstack/);
    expect(readFeatureSchema(schema(fields, meta({ 'featherstack.shard': '{"set":1}' })))).toBe(
      'has metadata featherstack.shard that is not a shard description',
    );
  });
});
