"""The command line of `python -m mnist_zoo.train`: options (or a --recipe) to train().

    python -m mnist_zoo.train --model lenet5 --activation relu --epochs 3 --data-dir DIR
    python -m mnist_zoo.train --recipe lenet5/mnist          # --list-recipes
"""

from __future__ import annotations

import argparse

from mnist_zoo import data as data_lib
from mnist_zoo.axes import CORE_AXES
from mnist_zoo.cli import command, fraction, non_negative_int, positive_float, positive_int
from mnist_zoo.models import ACTIVATIONS, LR_SCHEDULES, OPTIMIZERS, list_models
from mnist_zoo.train import recipes
from mnist_zoo.train.run import train


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mnist_zoo.train", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # An abbreviation such as --lr-s would change meaning when a new option starts alike.
        allow_abbrev=False)
    parser.add_argument("--model", default=CORE_AXES["model"], choices=list_models(),
                        help="zoo model")
    parser.add_argument("--activation", default=CORE_AXES["activation"], choices=ACTIVATIONS)
    parser.add_argument("--optimizer", default=CORE_AXES["optimizer"], choices=OPTIMIZERS)
    parser.add_argument("--learning-rate", "--lr", type=positive_float,
                        default=CORE_AXES["learning_rate"])
    parser.add_argument("--momentum", type=fraction, default=0.0,
                        help="for sgd and rmsprop, from 0 to below 1")
    parser.add_argument("--batch-size", type=positive_int, default=CORE_AXES["batch_size"])
    parser.add_argument("--epochs", type=positive_int, default=CORE_AXES["epochs"])
    parser.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                        help="decay over the whole run from --learning-rate")
    parser.add_argument("--dropout", type=fraction, default=None,
                        help="dropout after dense layers, from 0 to below 1")
    parser.add_argument("--pooling", choices=("avg", "max"), default=None, help="lenet5 only")
    parser.add_argument("--augment", default="none",
                        help="training-time augmentation: none, all (every one but flip), or a "
                             f"'+'-joined subset of {', '.join(data_lib.AUGMENTATIONS)}; flip "
                             "mirrors left-right, for Fashion-MNIST")
    data_lib.add_data_arguments(parser)
    parser.add_argument("--subset", type=positive_int, default=None,
                        help="train on this many training images only")
    parser.add_argument("--validation-size", type=int, default=None,
                        help="images held out for validation (default 1/12: 5,000 of 60,000)")
    parser.add_argument("--early-stopping", type=non_negative_int, default=0, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without val_loss improvement (0 = off)")
    parser.add_argument("--keep-checkpoints", type=positive_int, default=2,
                        help="epoch checkpoints to keep")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run folder's newest checkpoint (with the "
                             "settings the run was started with)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a run folder that already holds a run")
    parser.add_argument("--initial-weights", default=None, help=".keras or .weights.h5 to start from")
    parser.add_argument("--out", default="results/runs", help="parent folder of run folders")
    parser.add_argument("--name", default=None, help="run folder name (default from settings)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export")
    parser.add_argument("--recipe", default=None, metavar="MODEL/DATASET",
                        help="train a reference recipe (mnist_zoo/train/recipes.toml), e.g. "
                             "lenet5/mnist; options given here override its settings")
    parser.add_argument("--list-recipes", action="store_true", help="list the recipes and exit")
    return parser


@command
def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_recipes:
        print("\n".join(recipes.list_recipes()))
        return 0
    if args.recipe:
        recipes.apply_recipe(args, args.recipe, recipes.explicit_options(parser, argv))
    settings = {key: value for key, value in (("dropout", args.dropout), ("pooling", args.pooling))
                if value is not None}
    train(args.model, activation=args.activation, optimizer=args.optimizer,
          learning_rate=args.learning_rate, momentum=args.momentum,
          batch_size=args.batch_size, epochs=args.epochs, dataset=args.dataset,
          data_dir=args.data_dir, subset=args.subset, validation_size=args.validation_size,
          augment=args.augment, lr_schedule=args.lr_schedule,
          early_stopping=args.early_stopping, keep_checkpoints=args.keep_checkpoints,
          resume=args.resume, overwrite=args.overwrite, initial_weights=args.initial_weights, out=args.out,
          name=args.name, seed=args.seed, tensorboard=args.tensorboard,
          export=not args.no_export, **settings)
    return 0
