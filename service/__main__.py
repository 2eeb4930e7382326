from service.cli import app

if __name__ == "__main__":  # CPU worker processes are spawned: they import this module as __mp_main__
    app(prog_name="counterfeit")
