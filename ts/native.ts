// Loads the platform's prebuilt addon through the loader napi-rs generates in native/.
// The rest of dlht imports the binding from here only, so the path lives in one place.

export * from '../native/index.js'
