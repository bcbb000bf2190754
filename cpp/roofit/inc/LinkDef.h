#ifdef __CLING__
#pragma link off all globals;
#pragma link off all classes;
#pragma link off all functions;
#pragma link C++ class RooFlowPdf+;
#pragma link C++ class RooEventColumn+;
#pragma link C++ class RooInterpolatedDensity+;
#pragma link C++ class RooNSBIYield+;
#pragma link C++ class RooNSBIPdf+;
#pragma link C++ class RooAnalyticNLL+;
#pragma link C++ class RooNSBINLL+;
#pragma link C++ class RooCombinedNLL+;
#pragma link C++ class RooRatioFunction+;
#pragma link C++ class RooGPMassPlane+;
#pragma link C++ namespace RooML;
#pragma link C++ function RooML::useInverseHessian;
#endif
