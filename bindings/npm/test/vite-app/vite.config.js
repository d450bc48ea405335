export default {
  base: "./",
  build: { target: "es2022" },
  worker: { format: "es" },
  // `vite dev` would pre-bundle the package and lose its import.meta.url-relative assets
  optimizeDeps: { exclude: ["unmask"] },
};
