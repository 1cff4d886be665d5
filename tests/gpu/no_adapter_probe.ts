// Run by tests/gpu/device.test.ts in a child process whose Vulkan loader can find no driver.
import { GpuError, requestGpu } from '../../src/gpu/device';

requestGpu().then(
  () => {
    console.log(JSON.stringify({ ok: true }));
    process.exit(0);
  },
  (e: unknown) => {
    console.log(JSON.stringify({ ok: false, typed: e instanceof GpuError, kind: (e as GpuError).kind, message: (e as Error).message }));
    process.exit(0);
  },
);
