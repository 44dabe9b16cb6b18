import { encodeKeys, RecursiveModelIndex, ReservoirSampler } from 'dlht'

// Keep a uniform 10k sample of a stream of keys, then learn their distribution.
const sampler = new ReservoirSampler({ capacity: 10_000, seed: 1 })
const words = ['apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape', 'kiwi', 'lemon', 'mango']
sampler.insertMany(encodeKeys(words))

const rmi = new RecursiveModelIndex({ branchingFactor: 4, modelType: 'linear' })
rmi.train(sampler.sample())

// Positions follow key order, spread over [0, 2^62).
const [cherry, fig] = encodeKeys(['cherry', 'fig'])
const { position, error } = rmi.predictWithError(cherry)
const { hashMin, hashMax } = rmi.predictRange(cherry, fig)
console.log({ position, error, hashMin, hashMax })
console.log(rmi.predict(fig) > rmi.predict(cherry)) // true

// Ship the model: JSON-safe dict or compact binary.
const copy = RecursiveModelIndex.deserialize(rmi.serialize())
console.log(copy.predict(cherry) === position) // true
