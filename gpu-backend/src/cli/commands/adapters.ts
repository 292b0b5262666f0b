import type { Command } from 'commander';
import { positiveInt } from '../args.ts';
import { ProgressBar } from '../progress.ts';

/** `realign adapters list|add|remove|import`: the named InRa adapters of a checkpoint (make/adapters.ts). */
export function register(program: Command): void {
  const cmd = program
    .command('adapters')
    .description(
      'the named InRa adapters over one base model: list them, add an identity adapter, remove one, import a release checkpoint',
    );
  cmd
    .command('list')
    .description('print the adapters of a checkpoint as JSON: [{name, first, layers}] bottom first')
    .argument('<model>', 'checkpoint folder')
    .option('--inra <k>', 'a checkpoint of the original release: its bottom k layers are one adapter', positiveInt)
    .action(async (model: string, o: { inra?: number }) => {
      const { listAdapters } = await import('../../make/adapters.ts');
      process.stdout.write(`${JSON.stringify(listAdapters(model, o.inra))}\n`);
    });
  cmd
    .command('add')
    .description('write <out>: <model> with a new identity adapter (the base model until trained) above its adapters')
    .argument('<model>', 'checkpoint folder (plain or InRa)')
    .argument('<out>', 'folder to create (must not exist)')
    .requiredOption('--name <adapter>', "the new adapter's name (lower case letters, digits, _ and -)")
    .option('--adapter-layers <k>', 'layers of the new adapter', positiveInt, 1)
    .action(async (model: string, out: string, o: { name: string; adapterLayers: number }) => {
      const { addAdapter } = await import('../../make/adapters.ts');
      const bar = new ProgressBar('adapters add');
      addAdapter(model, out, o.name, o.adapterLayers, (d, t) => bar.update(d, t));
      process.stdout.write(`${out}\n`);
    });
  cmd
    .command('remove')
    .description('write <out>: <model> without the named adapter (without its last one, the base model)')
    .argument('<model>', 'InRa checkpoint folder')
    .argument('<out>', 'folder to create (must not exist)')
    .requiredOption('--name <adapter>', 'the adapter to remove')
    .action(async (model: string, out: string, o: { name: string }) => {
      const { removeAdapter } = await import('../../make/adapters.ts');
      const bar = new ProgressBar('adapters remove');
      removeAdapter(model, out, o.name, (d, t) => bar.update(d, t));
      process.stdout.write(`${out}\n`);
    });
  cmd
    .command('import')
    .description("write <out>: a checkpoint of the original release's layout (adapter as layer 0) with its adapter named")
    .argument('<model>', 'checkpoint folder of the original release')
    .argument('<out>', 'folder to create (must not exist)')
    .requiredOption('--name <adapter>', 'the name its adapter gets')
    .option('--adapter-layers <k>', 'how many bottom layers the adapter is', positiveInt, 1)
    .action(async (model: string, out: string, o: { name: string; adapterLayers: number }) => {
      const { importReleaseAdapter } = await import('../../make/adapters.ts');
      const bar = new ProgressBar('adapters import');
      importReleaseAdapter(model, out, o.name, o.adapterLayers, (d, t) => bar.update(d, t));
      process.stdout.write(`${out}\n`);
    });
}
