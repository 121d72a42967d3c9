"""The command line of `python -m mnist_zoo.train`: options (or a --recipe) to train().

    python -m mnist_zoo.train --model lenet5 --activation relu --epochs 3 --data-dir DIR
    python -m mnist_zoo.train --recipe lenet5/mnist          # --list-recipes
"""

from __future__ import annotations


from mnist_zoo import data as data_lib
from mnist_zoo.cli import Parser, add_settings, command, non_negative_int, positive_int
from mnist_zoo.settings import SETTINGS
from mnist_zoo.train import recipes
from mnist_zoo.train.run import train

# The table's settings that are train()'s own keyword arguments, not **settings.
RUN_OPTIONS = ("seed", "subset", "validation_size")


def build_parser() -> Parser:
    # allow_abbrev=False: an abbreviation such as --lr-s would change meaning when a new
    # option starts alike.
    parser = Parser(prog="python -m mnist_zoo.train", description=__doc__, allow_abbrev=False)
    # The settings table's options (mnist_zoo.settings): --model, --learning-rate, ...
    add_settings(parser, SETTINGS.values())
    data_lib.add_data_arguments(parser)
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
    # Settings left out (None) take the table's defaults in train().
    settings = {name: getattr(args, name) for name in SETTINGS
                if name not in RUN_OPTIONS and getattr(args, name) is not None}
    train(settings.pop("model", SETTINGS["model"].default), dataset=args.dataset,
          data_dir=args.data_dir, subset=args.subset, validation_size=args.validation_size,
          early_stopping=args.early_stopping, keep_checkpoints=args.keep_checkpoints,
          resume=args.resume, overwrite=args.overwrite, initial_weights=args.initial_weights,
          out=args.out, name=args.name, seed=args.seed if args.seed is not None else 0,
          tensorboard=args.tensorboard, export=not args.no_export, **settings)
    return 0
