/**
 * A batch's memory: one slot of shared buffers that the decode workers write into and the
 * consumer reads, recycled batch after batch. The ring holds prefetch + 1 slots for a flow's
 * whole life; it grows only while a consumer keeps tensors built on earlier batches.
 */
import type { PixelType } from '../image-spec.js';

export interface Slot {
  images: SharedArrayBuffer;
  view: Float32Array | Uint8Array;
  classIndex: Int32Array;
  samples: Uint32Array;
  /** uint8 staging rows for the pixel cache, allocated by the first caching epoch. */
  cache: SharedArrayBuffer | null;
  /** Objects (e.g. tfjs tensors) that still read this slot's memory; it is refilled only once all are disposed. */
  holds: { readonly isDisposed: boolean }[];
}

export class SlotRing {
  private readonly slots: Slot[];
  private free: Slot[] = [];

  constructor(
    private readonly batchSize: number,
    private readonly sampleSize: number,
    private readonly dtype: PixelType,
    count: number,
  ) {
    this.slots = Array.from({ length: count }, () => this.newSlot());
  }

  private newSlot(): Slot {
    const images = new SharedArrayBuffer(this.batchSize * this.sampleSize * (this.dtype === 'uint8' ? 1 : 4));
    return {
      images,
      view: this.dtype === 'uint8' ? new Uint8Array(images) : new Float32Array(images),
      classIndex: new Int32Array(this.batchSize),
      samples: new Uint32Array(this.batchSize),
      cache: null,
      holds: [],
    };
  }

  /** Slots allocated so far. */
  get size(): number {
    return this.slots.length;
  }

  /** Every slot is free again: an epoch starts. */
  reset(): void {
    this.free = [...this.slots];
  }

  /**
   * A free slot nothing reads any more. When every free slot is still held (a consumer keeps
   * tensors built on earlier batches), another slot is allocated rather than overwriting memory a
   * live tensor reads. `caching` gives the slot its staging rows for the pixel cache.
   */
  take(caching: boolean): Slot {
    const i = this.free.findIndex((s) => s.holds.every((h) => h.isDisposed));
    let slot: Slot;
    if (i >= 0) slot = this.free.splice(i, 1)[0]!;
    else {
      slot = this.newSlot();
      this.slots.push(slot);
    }
    slot.holds = [];
    if (caching) slot.cache ??= new SharedArrayBuffer(this.batchSize * this.sampleSize);
    return slot;
  }

  /** The consumer has moved past the slot's batch. */
  give(slot: Slot): void {
    this.free.push(slot);
  }
}
