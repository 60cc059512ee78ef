"""Drop-in replacements for the lime and shap calls most tutorials use, computed by tfexplain's graphs.

    import tfexplain.compat.lime as lime            # instead of: import lime
    import tfexplain.compat.lime.lime_tabular       #             import lime.lime_tabular
    import tfexplain.compat.shap as shap            #             import shap

See :mod:`tfexplain.compat.lime` and :mod:`tfexplain.compat.shap` for what is covered.
"""
