#!/usr/bin/env node
/** The `simclr` command line. Each subcommand lives in its own module; this file only wires them up. */
import { Command, CommanderError } from 'commander';
import { doctor, formatDoctor } from './doctor';
import { Tensor } from './tensor';

export function buildProgram(): Command {
  const program = new Command();
  program.name('simclr').description('SimCLR self-supervised learning on LibTorch').version(require('../package.json').version);

  program
    .command('doctor')
    .description('show the LibTorch, CUDA, threads and BLAS that simclr uses')
    .option('--json', 'print the report as JSON')
    .action((options: { json?: boolean }) => {
      const report = doctor();
      console.log(options.json ? JSON.stringify(report, null, 2) : formatDoctor(report));
    });

  program
    .command('quickstart')
    .description('check the installation: doctor, then one native op')
    .action(() => {
      console.log(formatDoctor(doctor()));
      using x = Tensor.randn([4, 3]);
      console.log(`one op: ${x} created and read back (${x.toTypedArray().length} values)`);
    });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    console.error(`simclr: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code));
}
