from nemo_cosmos_ar.cli import entry

if __name__ == "__main__":  # guarded: dist-checkpoint saves spawn processes that re-import __main__
    entry()
