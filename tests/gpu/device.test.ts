// Failures surface as typed errors with a hint, never as a hang: no adapter, device loss, bad commands.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { createBuffer, readF32 } from '../../src/gpu/buffers';
import { checkGpu, GpuError, requestGpu } from '../../src/gpu/device';
import { makeDispatch, run } from '../../src/gpu/kernel';
import addCode from '../../shaders/add.wgsl?raw';

describe('requestGpu', () => {
  it('reports the adapter it found, and its limits', async () => {
    const gpu = await requestGpu();
    expect(gpu.adapter.backend).toMatch(/dawn/);
    expect(gpu.limits.maxStorageBufferBindingSize).toBeGreaterThanOrEqual(128 << 20);
    gpu.device.destroy();
  });

  it('with no usable driver, fails with a GpuError saying how to get an adapter', () => {
    // VK_ICD_FILENAMES set to a missing file: the loader finds no driver and no fallback is tried.
    const out = execFileSync('npx', ['vite-node', 'tests/gpu/no_adapter_probe.ts'], {
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    const r = JSON.parse(out.trim().split('\n').at(-1)!);
    expect(r).toMatchObject({ ok: false, typed: true, kind: 'no-adapter' });
    expect(r.message).toMatch(/Hint: .*libvulkan1/);
  });

  it('a lost device rejects readbacks with a device-lost GpuError instead of hanging', async () => {
    const gpu = await requestGpu();
    const v = createBuffer(gpu, 64);
    gpu.device.destroy();
    const lost = await gpu.lost;
    expect(lost).toBeInstanceOf(GpuError);
    expect(lost.kind).toBe('device-lost');
    await expect(readF32(gpu, v)).rejects.toMatchObject({ kind: 'device-lost' });
    expect(() => checkGpu(gpu)).toThrow(/lost/);
  });

  it('an invalid command surfaces as a validation GpuError at the next wait', async () => {
    const gpu = await requestGpu();
    const small = createBuffer(gpu, 16);
    // Binding the same buffer as a read-only input and as the writable output is invalid in WebGPU.
    const d = makeDispatch(gpu, { shader: { name: 'add', code: addCode }, entry: 'main', uniforms: [4], buffers: { 1: small, 2: small, 3: small }, workgroups: [1] });
    await expect(run(gpu, [d])).rejects.toMatchObject({ kind: 'validation' });
    gpu.device.destroy();
  });
});
