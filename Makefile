# LLM Lab: every target sets itself up first (scripts/setup.sh is idempotent).
#   make book   set up, then build the static book into _build/html
#   make test   set up, then run every check CI runs
#   make lab    set up, then open the chapters in JupyterLab
VENV := .venv
BIN := $(VENV)/bin
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg

.PHONY: setup book test lab notebooks lint check-notebooks unit nbval papermill \
        book-strict browser clean

setup:
	bash scripts/setup.sh

book: setup
	$(BIN)/jupyter-book build . -W --keep-going
	@echo "The book is in _build/html/index.html"

STAGES := lint check-notebooks unit nbval papermill book-strict browser

# every stage in turn, then the time each took (also when one fails)
test: setup
	@bash scripts/timed_stages.sh $(STAGES)

lint:
	$(BIN)/ruff check labkit booktools tests benchmarks scripts notebooks
	$(BIN)/ruff format --check labkit booktools tests benchmarks scripts

check-notebooks:
	$(BIN)/python -m booktools.check_notebooks

# Two workers, one thread each (CI has 2 cores): about half the wall time of
# one worker, and torch never runs 2 threads per worker on 2 cores, which
# oversubscribes them. A model a test needs is trained once (labkit.recipes
# locks it) and on the recipe's own thread count (recipes.TRAIN_THREADS).
unit:
	OMP_NUM_THREADS=1 $(BIN)/pytest -p no:cacheprovider -n 2 tests

# the cached models first (a fresh cache trains them here), then the chapters
# in one worker with torch's default threads: the threads they were executed
# with (a chapter's sums, like a recipe's, depend on the thread count)
nbval:
	$(BIN)/python -c "from labkit.recipes import load_sft_model; load_sft_model()"
	$(BIN)/pytest -p no:cacheprovider --nbval-lax notebooks

# one chapter with non-default parameters, through labkit's checked runner
papermill:
	mkdir -p _build/papermill
	$(BIN)/labkit run notebooks/01_text_as_numbers.ipynb \
	  -o _build/papermill/01_text_as_numbers.ipynb \
	  -p sample_text "Grüße, 世界! 🙂" -p damaged_char 40
	$(BIN)/python -c "from labkit.experiments import read_records as r; \
	  print(r('_build/papermill/01_text_as_numbers.ipynb'))"

book-strict:
	rm -rf _build/html _build/.doctrees
	$(BIN)/jupyter-book build . -W --keep-going

browser:
	$(BIN)/python -m booktools.check_site _build/html

lab: setup
	$(BIN)/jupyter lab notebooks

notebooks: setup
	$(BIN)/python -m booktools.execute_notebooks

clean:
	rm -rf _build
