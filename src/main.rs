//! The `incept` command: a demo by default, plus `info`, `cost`, `bench` and `layer`.

mod cli;

fn main() {
    std::process::exit(cli::main(std::env::args().skip(1).collect()));
}
