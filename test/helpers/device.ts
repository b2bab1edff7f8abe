/**
 * The device that the tests which take one run on: SIMCLR_TEST_DEVICE, 'cpu' by default; 'cuda' or 'cuda:<index>' on
 * a GPU machine (bench/gpu/run.sh sets it). Asking for a CUDA device that this LibTorch or machine does not have fails
 * every test file that imports this, rather than quietly testing the CPU again.
 */
import { cuda, isCudaDevice } from '../../src/tensor';

function chosenDevice(): string {
  const device = process.env.SIMCLR_TEST_DEVICE || 'cpu';
  if (device !== 'cpu' && !isCudaDevice(device)) {
    throw new Error(`SIMCLR_TEST_DEVICE must be 'cpu', 'cuda' or 'cuda:<index>', got '${device}'`);
  }
  if (isCudaDevice(device) && !cuda.isAvailable()) {
    throw new Error(`SIMCLR_TEST_DEVICE=${device} but CUDA is not available to this LibTorch (simclr doctor says why)`);
  }
  return device;
}

export const testDevice = chosenDevice();
/** True when the tests run on a GPU; the CPU is then the reference for device results. */
export const onCuda = isCudaDevice(testDevice);
