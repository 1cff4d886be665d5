// What the web build gives transformers.js for `onnxruntime-web/webgpu` (see vite.config.ts): nothing.
// The app uses transformers.js for tokenizers only; with no ONNX Runtime, transformers.js skips its
// runtime setup and never fetches a wasm file.
export {};
