import { loadTensorFlow } from '@featherstack/tensorflow';
const tf = loadTensorFlow({ intraOpThreads: 2, interOpThreads: 1 });
const n = 12000, d = 64;
const xs = tf.randomUniform([n, d]); const ys = tf.randomUniform([n], 0, 10, 'int32');
const make = () => { const m = tf.sequential(); m.add(tf.layers.dense({ units: 128, activation: 'relu', inputShape: [d] })); m.add(tf.layers.dense({ units: 10, activation: 'softmax' })); return m; };
let m = make(); m.compile({ optimizer: tf.train.adam(1e-3), loss: 'sparseCategoricalCrossentropy', metrics: ['accuracy'] });
let t = performance.now(); await m.fit(xs, ys.toFloat(), { epochs: 1, batchSize: 32, shuffle: false, verbose: 0 }); console.log('fit', ((performance.now() - t) / (n / 32)).toFixed(2), 'ms/step');
m = make(); const opt = tf.train.adam(1e-3);
const yoh = tf.oneHot(ys, 10).toFloat();
t = performance.now();
for (let s = 0; s < n; s += 32) {
  const cost = opt.minimize(() => tf.tidy(() => { const x = xs.slice([s, 0], [32, d]); const y = yoh.slice([s, 0], [32, 10]); return tf.losses.softmaxCrossEntropy(y, m.apply(x, { training: true }).log ? m.apply(x, { training: true }) : m.apply(x)); }), false);
}
console.log('minimize', ((performance.now() - t) / (n / 32)).toFixed(2), 'ms/step');
